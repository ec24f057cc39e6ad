"""Numbers about a training curve, computed in code.

A 135M model cannot be trusted to subtract two losses; it can be trusted to
read "overfitting: yes". So gaps, oscillation, plateaus and divergence are
measured here and handed to the agents as facts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, TypedDict

from agents.records import MetricInfo, RunRecord
from lgt.direction import best_index, gain, sign

PLATEAU_EPOCHS = 3
PLATEAU_TOL = 2e-3  # relative: a gain below 0.2 % of the metric is no gain
OVERFIT_RISE = 0.05  # relative rise of val loss above its minimum
STILL_FALLING = 0.02  # relative drop of train loss in the last epoch
RISE_TOL = 0.02  # relative rise of train loss over an epoch that counts as rising, not noise
UNDERFIT_FALL = 1 / 3  # train loss that fell by less than this share over the run never fit the training data
UNSTABLE_SHARE = 0.5  # val loss reversing direction on at least half its steps ...
UNSTABLE_STEPS = 4  # ... of at least this many, and at least twice (one turn is a minimum, not instability)
IDLE_EPOCHS = 3  # a run whose best epoch came this many epochs before its end ...
IDLE_SHARE = 0.5  # ... and in its first half trained the rest for nothing
_DIVERGENCE_WORDS = re.compile(r"nan|inf|diverg|explod|overflow", re.IGNORECASE)


class Diagnostics(TypedDict):
    """Facts about one trial's curves; None where the history cannot tell."""

    epochs: int
    best_epoch: int | None
    best_val_metric: float | None
    gap_last: float | None
    gap_best: float | None
    oscillation: float | None
    seconds_per_epoch: float | None
    failed: bool
    diverged: bool
    plateau: bool
    overfitting: bool
    underfitting: bool
    unstable: bool
    stopped_too_early: bool
    ran_too_long: bool
    train_loss_fall: float | None


def diagnose(trial: Mapping[str, Any], metric: MetricInfo) -> Diagnostics:
    """Measure one trial.

    Args:
        trial: A trial record (its ``history``, ``status`` and ``fail_reason`` are read).
        metric: ``{"name", "direction"}`` of the validation metric.

    ``gap_*`` is val loss minus train loss (positive: worse on unseen data).
    ``oscillation`` is the share of val-loss steps that reverse direction.
    ``train_loss_fall`` is the share by which train loss fell from the
    first epoch to the last.

    The flags, each a fact a reader can check on the curves:
    ``stopped_too_early``: still improving at the last epoch with train loss
    falling, so more epochs or a faster schedule would pay.
    ``underfitting``: train loss fell by less than `UNDERFIT_FALL` over the
    run: the model never fit the training data (too little capacity, too
    much regularisation, or too small a step).
    ``ran_too_long``: the best epoch came in the first half and at least
    `IDLE_EPOCHS` epochs before the end: the rest were trained for nothing.
    ``unstable``: val loss reverses direction on at least half its steps.
    """
    history: list[Mapping[str, Any]] = list(trial.get("history") or [])
    train = [_num(h.get("train_loss")) for h in history]
    val = [_num(h.get("val_loss")) for h in history]
    score = [_num(h.get("val_metric")) for h in history]
    best = _best_index(score, metric["direction"])
    failed = trial.get("status") == "failed"
    losses = [h.get(key) for h in history for key in ("train_loss", "val_loss")]
    # Losses all NaN are losses not reported (an objective that reports its metric alone), not a divergence.
    reported = any(isinstance(x, int | float) and math.isfinite(x) for x in losses)
    diverged = any(isinstance(x, float) and (math.isinf(x) or (reported and math.isnan(x))) for x in losses) or (
        failed and bool(_DIVERGENCE_WORDS.search(trial.get("fail_reason") or ""))
    )
    overfitting = _overfitting(train, val)
    fall = _fall(train)
    # A curve of the metric alone (an objective that reports only its validation value): read that instead.
    losses_known = any(math.isfinite(v) for v in val)
    oscillation = _oscillation(val if losses_known else score)
    epochs = len(history)
    return Diagnostics(
        epochs=len(history),
        best_epoch=int(history[best].get("epoch", best + 1)) if best is not None else None,
        best_val_metric=score[best] if best is not None else None,
        gap_last=_gap(train, val, len(history) - 1),
        gap_best=_gap(train, val, best),
        oscillation=oscillation,
        seconds_per_epoch=_mean([_num(h.get("seconds")) for h in history]),
        failed=failed,
        diverged=diverged,
        plateau=_plateau(score, metric["direction"]),
        overfitting=overfitting,
        underfitting=not diverged and fall is not None and epochs >= 2 and fall < UNDERFIT_FALL,
        unstable=not diverged and oscillation is not None and epochs - 1 >= UNSTABLE_STEPS
        and oscillation >= UNSTABLE_SHARE and oscillation * (epochs - 2) >= 2,
        stopped_too_early=not overfitting and not diverged and (
            _still_improving(train, best, epochs) if any(math.isfinite(t) for t in train)
            else _metric_still_improving(score, best, epochs, metric["direction"])),
        ran_too_long=not diverged and best is not None and epochs - 1 - best >= IDLE_EPOCHS
        and best + 1 <= IDLE_SHARE * epochs,
        train_loss_fall=fall,
    )


def flags(diagnostics: Diagnostics) -> list[str]:
    """The raised flags, in words."""
    d = diagnostics
    raised = {
        "failed": d["failed"],
        "diverged": d["diverged"],
        "plateau": d["plateau"],
        "overfitting": d["overfitting"],
        "underfitting": d["underfitting"],
        "unstable": d.get("unstable", False),
        "stopped too early": d.get("stopped_too_early", False),
        "ran too long": d.get("ran_too_long", False),
    }
    return [name for name, up in raised.items() if up]


def summarize_curve(history: Sequence[Mapping[str, Any]], metric: MetricInfo) -> str:
    """One line that lets a reader see the curves, e.g.

    "5 epochs; val accuracy 0.81->0.93 (best 0.94 @4); train loss 1.9->0.21;
    val loss 0.55->0.24; gap +0.03; 0.6 s/epoch"
    """
    if not history:
        return "no epochs"
    train = [_num(h.get("train_loss")) for h in history]
    val = [_num(h.get("val_loss")) for h in history]
    score = [_num(h.get("val_metric")) for h in history]
    best = _best_index(score, metric["direction"])
    best_text = f" (best {_fmt(score[best])} @{history[best].get('epoch', best + 1)})" if best is not None else ""
    parts = [f"{len(history)} epoch{'s' if len(history) != 1 else ''}", f"val {metric['name']} {_span(score)}{best_text}"]
    parts += [f"{name} {_span(values)}" for name, values in (("train loss", train), ("val loss", val))
              if any(math.isfinite(v) for v in values)]  # an objective may report its metric alone
    gap = _gap(train, val, len(history) - 1)
    if gap is not None:
        parts.append(f"gap {gap:+.2g}")
    seconds = _mean([_num(h.get("seconds")) for h in history])
    if seconds is not None:
        parts.append(f"{seconds:.2g} s/epoch")
    return "; ".join(parts)


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _span(values: list[float]) -> str:
    return f"{_fmt(values[0])}->{_fmt(values[-1])}" if len(values) > 1 else _fmt(values[0])


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _best_index(score: list[float], direction: str) -> int | None:
    """The best finite value's epoch index (the earliest on ties): an infinite loss or metric is no best."""
    return best_index((v if math.isfinite(v) else None for v in score), direction)


def _gap(train: list[float], val: list[float], i: int | None) -> float | None:
    if i is None or i < 0:
        return None
    gap = val[i] - train[i]
    return gap if math.isfinite(gap) else None


def _oscillation(val: list[float]) -> float | None:
    steps = [b - a for a, b in pairwise(val) if math.isfinite(b - a)]
    if len(steps) < 2:
        return None
    reversals = sum(1 for a, b in pairwise(steps) if a * b < 0)
    return reversals / (len(steps) - 1)


def _plateau(score: list[float], direction: str) -> bool:
    if len(score) <= PLATEAU_EPOCHS:
        return False
    before, window = score[:-PLATEAU_EPOCHS], score[-PLATEAU_EPOCHS:]
    b, w = _best_index(before, direction), _best_index(window, direction)
    if b is None or w is None:
        return False
    return gain(window[w], before[b], direction) <= PLATEAU_TOL * max(abs(before[b]), 1e-12)


def _overfitting(train: list[float], val: list[float]) -> bool:
    lowest = _best_index(val, "minimize")
    last = len(val) - 1
    if lowest is None or lowest == last or not math.isfinite(val[last]):
        return False
    rose = val[last] > val[lowest] + OVERFIT_RISE * abs(val[lowest])
    return rose and train[last] < train[lowest]


def _fall(train: list[float]) -> float | None:
    """The share by which train loss fell from the first epoch to the last (negative: it rose)."""
    if len(train) < 2 or not math.isfinite(train[0]) or not math.isfinite(train[-1]) or train[0] <= 0:
        return None
    return (train[0] - train[-1]) / train[0]


def _metric_still_improving(score: list[float], best: int | None, epochs: int, direction: str) -> bool:
    """With no losses reported: the last step was the best and gained more than a plateau's tolerance."""
    if epochs < 2 or best != epochs - 1 or not math.isfinite(score[-2]):
        return False
    return gain(score[-1], score[-2], direction) > PLATEAU_TOL * max(abs(score[-2]), 1e-12)


def _still_improving(train: list[float], best: int | None, epochs: int) -> bool:
    if epochs < 2 or best != epochs - 1:
        return False
    prev, last = train[-2], train[-1]
    return math.isfinite(prev) and math.isfinite(last) and last < prev * (1 - STILL_FALLING)


class EpochDiagnostics(Diagnostics):
    """`Diagnostics` of a run still training, plus how its last epoch moved.

    ``train_loss_rising``: the last epoch's mean training loss is above the
    epoch before (at epoch 1: above the untrained model's first-batch loss,
    ``start_loss``), i.e. the updates make the model worse: the usual sign
    of a learning rate too high for where the run now is.
    ``val_worsening``: validation metric and loss both got worse last epoch.
    """

    train_loss_rising: bool
    val_worsening: bool
    last_metric_change: float | None


def diagnose_epoch(run: RunRecord, metric: MetricInfo) -> EpochDiagnostics:
    """Measure a run after an epoch (keys read: ``history``, ``start_loss``, ``status``, ``fail_reason``)."""
    base = diagnose(run, metric)
    history: list[Mapping[str, Any]] = list(run.get("history") or [])
    train = [_num(h.get("train_loss")) for h in history]
    val = [_num(h.get("val_loss")) for h in history]
    score = [_num(h.get("val_metric")) for h in history]
    before = train[-2] if len(train) >= 2 else _num(run.get("start_loss"))
    rising = bool(train) and math.isfinite(before) and math.isfinite(train[-1]) and train[-1] > before * (1 + RISE_TOL)
    change = score[-1] - score[-2] if len(score) >= 2 and math.isfinite(score[-1] - score[-2]) else None
    worse = change is not None and sign(metric["direction"]) * change < 0 and len(val) >= 2 and val[-1] > val[-2]
    return EpochDiagnostics(**base, train_loss_rising=rising, val_worsening=worse, last_metric_change=change)


def epoch_flags(diagnostics: EpochDiagnostics) -> list[str]:
    """The raised flags of a running curve, in words."""
    d = diagnostics
    extra = {"train loss rising": d["train_loss_rising"], "val worsening": d["val_worsening"]}
    # A run still training has not stopped (its still-improving curve is just that), and may not have fit yet.
    running = {"stopped too early": "still improving"}
    return [running.get(f, f) for f in flags(d) if f not in ("failed", "underfitting")] + \
        [name for name, up in extra.items() if up]


def alarms(diagnostics: EpochDiagnostics) -> list[str]:
    """Flags that make a curve unhealthy whatever a model says: it diverges or training loss goes up."""
    d = diagnostics
    return [name for name, up in (("diverged", d["diverged"]), ("train loss rising", d["train_loss_rising"])) if up]
