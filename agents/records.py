"""The plain data that passes between the graph and the agents, defined once.

``agents`` must not import ``tuning_targets``, so what crosses between them
is plain JSON-friendly data whose shapes are written here and nowhere else:

- `TrialRecord`: one finished trial as the graph keeps it in its state and
  the agents read it. It never holds the test metric: decisions read
  validation only. The Optuna study stores the same keys as trial attrs
  (``changes`` under ``proposal``), plus the test metric, for reports.
- knob spec (`tuning_targets.SearchSpace.describe()`): ``name``,
  ``dimension``, ``type``, ``range``, ``dynamic``, ``description``; read as
  a loose mapping, since the targets build it.
- `MetricInfo`: ``name`` and ``direction`` (``maximize`` | ``minimize``).
- run record (one trial still training, for in-run adaptation): ``config``
  (the knob values now), ``history`` (epochs so far), ``epochs`` (planned),
  ``start_loss`` (the untrained model's first-batch loss), ``schedule``
  (per-epoch entries: ``epoch``, ``changes``, ``kept``, ``refused``,
  ``val_metric_with``, ``val_metric_without``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias, TypedDict

from lgt.direction import best_index
from lgt.vocabulary import is_source

KnobSpec: TypeAlias = Mapping[str, Any]
MetricInfo: TypeAlias = Mapping[str, str]
RunRecord: TypeAlias = Mapping[str, Any]


class TrialRecord(TypedDict, total=False):
    """One trial: what was proposed and why, what it scored, and the Evaluator's verdict on it."""

    number: int  # the trial's number in the run's Optuna study
    round: int
    slot: int  # position in a parallel round
    config: dict[str, Any]
    source: str  # `lgt.vocabulary.Source`, or one edited by a person (`lgt.vocabulary.edited`)
    changes: dict[str, Any]  # knob: new value, against the best config before the round
    reasons: dict[str, str]  # knob: why
    expected_effect: str
    notes: list[str]  # every repair code made to the proposal, in words
    evidence: dict[str, Any]  # code-computed: per-knob support, the chosen candidate's origin and TPE rank
    rationale: str  # the Advisor's one sentence for its choice (checked; empty when none stood)
    replaced: list[str]  # which LLM texts failed the checks and were replaced by text from the evidence
    pick: int | None  # the candidate the Advisor picked (hybrid)
    departed: bool | None  # whether what trained differs from TPE's candidate 0 (hybrid; None otherwise)
    gated: bool  # the gate overruled the Advisor's departure
    status: str  # complete | failed
    val_metric: float | None
    fail_reason: str | None
    history: list[dict[str, Any]]  # per epoch: `tuning_targets.EpochRecord.to_dict()`
    best_epoch: int | None
    seconds: float
    n_params: int
    curve: str  # summarize_curve(history)
    diagnostics: dict[str, Any]
    verdict: dict[str, Any] | None  # Verdict.model_dump()
    epochs_trained: int  # both A/B branches of in-run checks count
    schedule: list[dict[str, Any]]  # --adapt epoch: one entry per epoch
    final_config: dict[str, Any]
    stop_reason: str


def val(trial: Mapping[str, Any]) -> float:
    """The validation metric of a trial known to be `scored`."""
    value = trial.get("val_metric")
    assert value is not None, "only a scored trial has a validation metric"
    return float(value)


def scored(trial: Mapping[str, Any]) -> bool:
    """True for a completed trial with a finite validation metric: only those can be compared."""
    value = trial.get("val_metric")
    return trial.get("status") == "complete" and isinstance(value, int | float) and math.isfinite(value)


def scored_value(trial: Mapping[str, Any]) -> float | None:
    """The validation metric of a `scored` trial; None for any other (failed, missing or not finite)."""
    return val(trial) if scored(trial) else None


def best_position(trials: Sequence[Mapping[str, Any]], direction: str) -> int | None:
    """The index of the best scored trial (the earliest on ties), or None: `lgt.direction`'s rule on records."""
    return best_index((scored_value(t) for t in trials), direction)


def best_trial(trials: Sequence[TrialRecord], metric: MetricInfo) -> TrialRecord | None:
    """The best completed trial (earliest on ties), or None."""
    index = best_position(trials, metric["direction"])
    return None if index is None else trials[index]


def default_config(trials: Sequence[TrialRecord]) -> Mapping[str, Any]:
    """The configuration trials are compared against: the untuned default's, else the first trial's."""
    for trial in trials:
        if is_source(trial, "default"):
            return trial.get("config") or {}
    return trials[0].get("config") or {} if trials else {}


def dynamic_knobs(space: Sequence[KnobSpec]) -> list[KnobSpec]:
    """The knobs that may change between epochs of one run."""
    return [knob for knob in space if knob.get("dynamic")]
