"""Names for the plain data the graph hands to the agents.

The shapes are defined once, by the graph and the tuning targets; agents
only read them, so these aliases stay loose on purpose (``agents`` must not
import ``tuning_targets``). The keys read here:

- knob spec: ``name``, ``dimension``, ``type``, ``range``, ``dynamic``, ``description``.
- trial record: ``number``, ``config``, ``status``, ``val_metric``,
  ``fail_reason``, ``history`` (per-epoch ``epoch``, ``train_loss``,
  ``val_loss``, ``val_metric``, ``lr``, ``seconds``), ``source``,
  ``changes``, ``reasons``.
- metric info: ``name`` and ``direction`` (``maximize`` | ``minimize``).
- run record (one trial still training, for in-run adaptation): ``config``
  (the knob values now), ``history`` (epochs so far, as above), ``epochs``
  (planned), ``start_loss`` (the untrained model's first-batch loss),
  ``schedule`` (per-epoch entries: ``epoch``, ``changes``, ``kept``,
  ``refused``, ``val_metric_with``, ``val_metric_without``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

KnobSpec: TypeAlias = Mapping[str, Any]
TrialRecord: TypeAlias = Mapping[str, Any]
MetricInfo: TypeAlias = Mapping[str, str]
RunRecord: TypeAlias = Mapping[str, Any]


def scored(trial: TrialRecord) -> bool:
    """True for a completed trial with a finite validation metric: only those can be compared."""
    value = trial.get("val_metric")
    return trial.get("status") == "complete" and isinstance(value, int | float) and math.isfinite(value)


def is_better(value: float | None, than: float | None, direction: str) -> bool:
    """True when ``value`` strictly beats ``than``; a missing or NaN value never wins."""
    if value is None or math.isnan(value):
        return False
    if than is None or math.isnan(than):
        return True
    return value > than if direction == "maximize" else value < than


def best_trial(trials: Sequence[TrialRecord], metric: MetricInfo) -> TrialRecord | None:
    """The best completed trial (earliest on ties), or None."""
    best: TrialRecord | None = None
    for trial in trials:
        if scored(trial) and is_better(
            trial.get("val_metric"), best.get("val_metric") if best else None, metric["direction"]
        ):
            best = trial
    return best


def default_config(trials: Sequence[TrialRecord]) -> Mapping[str, Any]:
    """The configuration trials are compared against: the untuned default's, else the first trial's."""
    for trial in trials:
        if trial.get("source") == "default":
            return trial.get("config") or {}
    return trials[0].get("config") or {} if trials else {}


def dynamic_knobs(space: Sequence[KnobSpec]) -> list[KnobSpec]:
    """The knobs that may change between epochs of one run."""
    return [knob for knob in space if knob.get("dynamic")]
