"""Writes LGT trials into the run's Optuna study, once each.

LGT trials are trained outside Optuna, so each is added whole with
`study.add_trial`, carrying the proposal, its reasons and the verdict as
user attrs. The round number is stored too: it is how a resumed run sees
that a round already landed and must not be added again.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from lgt.studies import trial_attrs
from tuning_targets import Target, TrialResult


class StudyRecorder:
    def __init__(self, study: optuna.Study, target: Target, method: str = "lgt") -> None:
        self.study, self.target, self.method = study, target, method
        self.distributions = target.space.distributions()

    def find(self, round_number: int) -> int | None:
        for trial in self.study.get_trials(deepcopy=False):
            if trial.user_attrs.get("round") == round_number:
                return trial.number
        return None

    def record(self, round_number: int, config: dict[str, Any], result: dict[str, Any],
               attrs: dict[str, Any]) -> int:
        outcome = TrialResult.from_dict(result)
        user_attrs = trial_attrs(config, outcome, self.method, attrs.get("source", self.method))
        user_attrs |= {k: v for k, v in attrs.items() if k != "source"} | {"round": round_number}
        self.study.add_trial(optuna.trial.create_trial(
            params=config, distributions=self.distributions,
            state=TrialState.COMPLETE if outcome.ok else TrialState.FAIL,
            value=outcome.val_metric if outcome.ok else None, user_attrs=user_attrs))
        return self.study.get_trials(deepcopy=False)[-1].number
