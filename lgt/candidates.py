"""TPE's candidates for the LGT agents: the code that proposes, so the LLM only has to choose.

`TPECandidates` keeps an in-memory Optuna study that mirrors the run, told
every trial as what actually ran, with the very sampler the `tpe` baseline
uses (`lgt.methods.tpe_sampler`, same seed and budget). Its next ask is
therefore exactly what `lgt baseline --method tpe` would try next from the
same history: candidate 0, the anchor the gate falls back to. The study is
rebuilt on a resume by replaying one ask and one tell per recorded trial in
order, the same calls the live run made, so the sampler's random state
comes back the same.

Other candidates come from TPE's good region (samples of its density of the
best trials, ranked by its acquisition), and every candidate gets TPE's
score, from a second sampler instance that draws no random numbers, so
asking for them never moves candidate 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import optuna
from optuna.trial import TrialState

from agents.records import TrialRecord
from lgt import optuna_private
from tuning_targets import Config, SearchSpace, config_key

SamplerFactory = Callable[[], optuna.samplers.TPESampler]


class TPECandidates:
    """The graph's `CandidateSource`, backed by Optuna's TPE."""

    def __init__(self, space: SearchSpace, direction: Literal["maximize", "minimize"], default_config: Config,
                 sampler: SamplerFactory) -> None:
        self.space, self.direction, self.default_config = space, direction, dict(default_config)
        self.distributions = space.distributions()
        self._sampler = sampler
        self._scorer = sampler()  # scores and the good region; never asked, so its random state is never used
        self._study = self._fresh()
        self._told = 0  # trial records told so far
        self._asked: list[optuna.Trial] = []  # asked after the last told record, not yet told

    def _fresh(self) -> optuna.Study:
        study = optuna.create_study(direction=self.direction, sampler=self._sampler())
        study.enqueue_trial(self.default_config)  # the baseline's first trial: the shared default
        return study

    def sync(self, trials: Sequence[TrialRecord]) -> None:
        """Tell TPE every trial recorded since the last call, as what actually ran, in order."""
        if len(trials) < self._told:  # a different history (a test reusing the source): start over
            self._study, self._told, self._asked = self._fresh(), 0, []
        for record in trials[self._told:]:
            asked = self._asked.pop(0) if self._asked else self._study.ask(self.distributions)
            ran = {name: record["config"][name] for name in self.distributions}
            value = record.get("val_metric") if record.get("status") == "complete" else None
            if config_key(ran) == config_key(_params(asked, self.distributions)):
                self._tell(asked, value)
            else:  # the round ran something else: TPE hears what ran, and that its own ask did not
                self._study.tell(asked, state=TrialState.FAIL)
                self._study.add_trial(optuna.trial.create_trial(
                    params=ran, distributions=self.distributions,
                    state=TrialState.COMPLETE if value is not None else TrialState.FAIL, value=value))
            self._told += 1

    def _tell(self, trial: optuna.Trial, value: float | None) -> None:
        if value is None:
            self._study.tell(trial, state=TrialState.FAIL)
        else:
            self._study.tell(trial, value)

    def next(self, trials: Sequence[TrialRecord], n: int = 1) -> list[Config]:
        """TPE's own next `n` asks given `trials`: what the `tpe` baseline would try next (n=1)."""
        self.sync(trials)
        while len(self._asked) < n:
            self._asked.append(self._study.ask(self.distributions))
        return [_params(t, self.distributions) for t in self._asked[:n]]

    def region(self, trials: Sequence[TrialRecord], n: int, seed: int) -> list[Config]:
        """Up to `n` configs from TPE's good region, its favourites first (none before two trials completed)."""
        self.sync(trials)
        if sum(t.get("status") == "complete" for t in trials) < 2:
            return []
        drawn = optuna_private.tpe_region(self._scorer, self._study, self.distributions, max(24, 6 * n), seed)
        out: list[Config] = []
        for params, _ in drawn:
            config = self.space.validate(params, strict=False).config
            if all(config_key(config) != config_key(c) for c in out):
                out.append(config)
            if len(out) == n:
                break
        return out

    def scores(self, trials: Sequence[TrialRecord], configs: Sequence[Mapping[str, Any]]) -> list[float]:
        """TPE's acquisition value of each config (higher: TPE rates it likelier to beat the best)."""
        self.sync(trials)
        return optuna_private.tpe_scores(self._scorer, self._study, self.distributions,
                                         [dict(c) for c in configs])


def _params(trial: optuna.Trial, distributions: Mapping[str, Any]) -> Config:
    return {name: trial.params[name] for name in distributions}
