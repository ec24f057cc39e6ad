"""Writes what an LGT run does into its Optuna study, once each, and refreshes its change log.

LGT trials are trained outside Optuna, so each is added whole with
`study.add_trial`, carrying the proposal, its reasons and the verdict as
user attrs. The round number is stored too: it is how a resumed run sees
that a round already landed and must not be added again. Guidance versions
and the verdicts of parallel rounds are study attrs. After each write the
change log is rendered again from the study (`lgt.reporting`), so it never
says anything the storage does not hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from agents.records import TrialRecord
from graphs.state import Progress
from lgt.runs import RunSpec
from lgt.studies import budget_spent, fail_stale, is_counted, release, trial_attrs
from tuning_targets import Target, TrialResult

# Record keys stored under the same name as trial attrs, beside the proposal (the record's `changes`).
_STORED = ("reasons", "expected_effect", "notes", "verdict", "schedule", "epochs_trained", "final_config",
           "stop_reason", "evidence", "rationale", "replaced", "pick", "departed", "gated")


def proposal_attrs(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """What a trial stores about the proposal that made it (a candidate or a record)."""
    return {"source": candidate["source"], "proposal": dict(candidate.get("changes") or {}),
            "reasons": dict(candidate.get("reasons") or {}),
            "expected_effect": candidate.get("expected_effect") or "", "notes": list(candidate.get("notes") or []),
            **{k: candidate[k] for k in ("evidence", "rationale", "replaced", "pick", "departed", "gated")
               if k in candidate}}


class StudyRecorder:
    """The graph's `TrialRecorder` on an Optuna study; `on_change` runs after every write."""

    def __init__(self, study: optuna.Study, target: Target, method: str, *,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.study, self.target, self.method, self.on_change = study, target, method, on_change
        self.distributions = target.space.distributions()

    def find(self, round_number: int) -> int | None:
        for trial in self.study.get_trials(deepcopy=False):
            if trial.user_attrs.get("round") == round_number:
                return trial.number
        return None

    def record(self, round_number: int, record: TrialRecord, result: Mapping[str, Any],
               extra: Mapping[str, Any]) -> int:
        outcome = TrialResult.from_dict(dict(result))
        config = dict(record["config"])
        user_attrs = trial_attrs(config, outcome, self.method, record["source"]) | proposal_attrs(record)
        user_attrs |= {k: record[k] for k in _STORED if k in record}  # type: ignore[literal-required]
        user_attrs |= dict(extra) | {"round": round_number}
        self.study.add_trial(optuna.trial.create_trial(  # a conditional space: only the config's active knobs
            params=config, distributions=self.target.space.distributions(config),
            state=TrialState.COMPLETE if outcome.ok else TrialState.FAIL,
            value=outcome.val_metric if outcome.ok else None, user_attrs=user_attrs))
        self.on_change()
        return self.study.get_trials(deepcopy=False)[-1].number

    def note_verdict(self, round_number: int, trial_number: int, verdict: Mapping[str, Any]) -> None:
        self.study.set_user_attr(f"verdict_round_{round_number}", {"trial": trial_number, **verdict})
        self.on_change()

    def note_guidance(self, version: Mapping[str, Any]) -> None:
        """A guidance version (`guidance_v<n>`), or one refused by the checks (`guidance_refused_<round>`)."""
        key = f"guidance_refused_{version['after_round']}" if version.get("refused") else f"guidance_v{version['version']}"
        self.study.set_user_attr(key, dict(version))
        self.on_change()

    def finish(self) -> None:
        self.on_change()


class StudyDispatcher:
    """Hands parallel LGT rounds to `lgt worker`s through the study's queue.

    Each config is queued with `enqueue_trial`, carrying its round, slot and
    proposal as user attrs, so a worker's finished trial is recorded with
    the proposal that made it, and a retried trial (its worker died) keeps
    them too. The round's verdict is a study user attr (`StudyRecorder.note_verdict`),
    since Optuna freezes a finished trial's attributes.
    """

    def __init__(self, study: optuna.Study, spec: RunSpec, *, poll: float = 1.0, hint: str = "") -> None:
        self.study, self.spec, self.poll, self.hint = study, spec, poll, hint

    def _round(self, round_number: int) -> list[FrozenTrial]:
        return [t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get("round") == round_number]

    def submit(self, round_number: int, candidates: list[dict[str, Any]], first_attrs: dict[str, Any]) -> None:
        """Queue the round's slots that are not queued yet: a driver killed halfway through queued only some."""
        queued = {t.user_attrs.get("slot") for t in self._round(round_number)}
        for slot, candidate in enumerate(candidates):
            if slot in queued:
                continue
            attrs = {"method": self.spec.method, "round": round_number, "slot": slot, **proposal_attrs(candidate)}
            self.study.enqueue_trial(candidate["config"], user_attrs=attrs | (first_attrs if slot == 0 else {}))

    def collect(self, round_number: int, size: int, progress: Progress) -> list[tuple[int, int, dict[str, Any]]]:
        """The round's finished slots, once all are done, or once the budget is spent and none still runs.

        Workers stop at the run's budget (`lgt.studies.budget_spent`, the
        rule they read too), so a slot still queued then would wait forever:
        it is released (failed as ``surplus``, never counted), and the round
        is what ran.
        """
        said = -1
        while True:
            fail_stale(self.study)
            trials = self._round(round_number)
            done = {int(t.user_attrs["slot"]): t for t in trials if is_counted(t)}
            if len(done) >= size or (budget_spent(self.study, self.spec)
                                     and not any(t.state == TrialState.RUNNING for t in trials)):
                self._release_queued(trials)
                return [(slot, done[slot].number, _result(done[slot])) for slot in sorted(done)]
            if len(done) != said:
                progress.on_message(f"  waiting for workers: {len(done)}/{size} of round {round_number} done"
                                    + (f" ({self.hint})" if self.hint and said < 0 else ""))
                said = len(done)
            time.sleep(self.poll)


    def _release_queued(self, trials: list[FrozenTrial]) -> None:
        """Take the round's trials still queued off the queue, as a worker releases a trial past the budget."""
        for _ in [t for t in trials if t.state == TrialState.WAITING]:
            release(self.study, self.study.ask())


def _result(trial: FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    return TrialResult(status="complete" if trial.state == TrialState.COMPLETE else "failed",
                       val_metric=trial.value if trial.state == TrialState.COMPLETE else None,
                       test_metric=attrs.get("test_metric"), fail_reason=attrs.get("fail_reason"),
                       best_epoch=attrs.get("best_epoch"), seconds=float(attrs.get("seconds") or 0.0),
                       n_params=int(attrs.get("n_params") or 0), extra_metrics=attrs.get("extra_metrics") or {},
                       history=[]).to_dict() | {"history": attrs.get("history", [])}
