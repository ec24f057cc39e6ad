"""The closed list of what an agent may say about a trial, each a fact code can check, and its sentence.

A 135M model cannot write a useful sentence, but it can pick from a short
list. In menu mode (`--words menu`) the agents pick from `DIAGNOSES`;
code checks each pick against the flags it computed from the curves
(`agents.diagnostics`) and renders the sentence a reader sees, with the
numbers that back it. So "overfitting" is only ever said of a trial whose
validation loss rose from its minimum while training loss kept falling,
and the sentence says by how much.

`REMEDIES` is the playbook an engineer carries in their head: which way
to move a knob against each diagnosis ("overfitting: raise dropout, lower
epochs"). It checks a gradient step's direction against its cause, and
tells a reader which of a candidate's changes act on the best trial's
problem. A knob it does not know is never refused for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agents.diagnostics import UNDERFIT_FALL, Diagnostics, flags
from agents.formatting import value as _v
from lgt.direction import best_of

Diagnosis = Literal["improved", "no gain", "failed", "diverged", "overfitting", "underfitting", "plateau",
                    "unstable", "stopped too early", "ran too long", "healthy"]
OUTCOMES: tuple[Diagnosis, ...] = ("improved", "no gain", "failed")
CURVES: tuple[Diagnosis, ...] = ("diverged", "overfitting", "underfitting", "plateau", "unstable", "stopped too early",
                                 "ran too long", "healthy")
DIAGNOSES: tuple[Diagnosis, ...] = OUTCOMES + CURVES
Direction = Literal["increase", "decrease"]

# Knob -> direction against each diagnosis. Knobs of every built-in target; categorical knobs whose choices
# are ordered (batch_size, hidden_units, augmentation, ...) move up and down their list.
_CAPACITY = ("hidden_units", "hidden_layers", "conv_channels", "conv_blocks", "poly_degree", "feature_fraction",
             "max_leaf_nodes", "max_depth", "max_features", "n_estimators", "C")
_REGULARISERS = ("dropout", "weight_decay", "label_smoothing", "augmentation", "l2_regularization",
                 "min_samples_leaf", "alpha")
REMEDIES: dict[str, dict[str, Direction]] = {
    "overfitting": {**dict.fromkeys(_REGULARISERS, "increase"), **dict.fromkeys(_CAPACITY, "decrease"),
                    "epochs": "decrease", "max_iter": "decrease"},
    "underfitting": {**dict.fromkeys(_REGULARISERS, "decrease"), **dict.fromkeys(_CAPACITY, "increase"),
                     "learning_rate": "increase", "gb_learning_rate": "increase", "epochs": "increase",
                     "max_iter": "increase"},
    # Still improving at the last epoch means the epochs ran out, not patience (early stopping fires only after
    # epochs without gain), so early_stopping_patience is no remedy here.
    "stopped too early": {"epochs": "increase", "learning_rate": "increase", "max_iter": "increase",
                          "n_estimators": "increase"},
    "ran too long": {"epochs": "decrease", "max_iter": "decrease", "n_estimators": "decrease"},
    "plateau": {"learning_rate": "decrease", "gb_learning_rate": "decrease", "epochs": "decrease"},
    "unstable": {"learning_rate": "decrease", "gb_learning_rate": "decrease", "batch_size": "increase",
                 "momentum": "decrease"},
    "diverged": {"learning_rate": "decrease", "momentum": "decrease"},
    # Inside a run (`agents.diagnostics.epoch_flags`):
    "train loss rising": {"learning_rate": "decrease", "momentum": "decrease"},
    "val worsening": {"learning_rate": "decrease", **dict.fromkeys(_REGULARISERS, "increase")},
}
WORDS: dict[str, str] = {"increase": "raise", "decrease": "lower"}
# A diagnosis as the thing a step acts against ("against its divergence").
NOUNS: dict[str, str] = {"diverged": "divergence", "unstable": "instability", "failed": "failure",
                         "stopped too early": "stop while still improving", "ran too long": "idle last epochs",
                         "train loss rising": "rising train loss", "val worsening": "worsening validation"}


def noun(diagnosis: str) -> str:
    return NOUNS.get(diagnosis, diagnosis)


def supported(facts: Diagnostics, *, new_best: bool, scored: bool) -> list[Diagnosis]:
    """The diagnoses code's numbers support for one trial: its outcome, then its curve's raised flags (or healthy)."""
    outcome: Diagnosis = "failed" if not scored else "improved" if new_best else "no gain"
    raised = [f for f in flags(facts) if f != "failed"]
    curve: list[Diagnosis] = [d for d in CURVES if d in raised]
    if not curve and scored:
        curve = ["healthy"]
    return [outcome, *curve]


def contradiction(pick: str, facts: Diagnostics, *, new_best: bool, scored: bool) -> str | None:
    """Why code's numbers refuse `pick` for this trial, or None when they support it."""
    if pick not in DIAGNOSES:
        return f"{pick!r} is not on the list"
    if pick in supported(facts, new_best=new_best, scored=scored):
        return None
    why = {
        "improved": "it is not better than the best so far", "no gain": "it is the new best",
        "failed": "it completed", "healthy": "its curves raised " + ", ".join(flags(facts)),
        "overfitting": "validation loss did not rise from its minimum while training loss fell",
        "diverged": "its losses stayed finite", "plateau": "its last epochs still gained",
        "underfitting": "training loss fell by a third or more",
        "unstable": "validation loss did not reverse direction on half its steps",
        "stopped too early": "it was not still improving at its last epoch",
        "ran too long": "its best epoch was not early in the run",
    }
    return f"{pick}: {why.get(pick, 'not supported by the numbers')}"


def remedy(cause: str, knob: str) -> Direction | None:
    """The playbook's direction for `knob` against `cause`, or None when it has none."""
    return REMEDIES.get(cause, {}).get(knob)


def step_problem(knob: str, direction: str, cause: str, supported_causes: Sequence[str],
                 moved: Mapping[str, str]) -> str | None:
    """Why a gradient step (knob, direction, cause) must be dropped, or None.

    The cause must be one code supports for the trial; against a curve
    problem the direction may not be the playbook's opposite ("lower
    dropout against overfitting"); "improved" keeps moving a knob the way
    the trial moved it, "no gain" turns it back (`moved`: knob -> up/down in
    the trial's own change).
    """
    if cause not in supported_causes:
        return f"its cause {cause!r} is not what the numbers show ({', '.join(supported_causes)})"
    way = {"increase": "up", "decrease": "down"}.get(direction)
    if cause in ("improved", "no gain"):
        if knob not in moved:
            return f"the trial did not move {knob}, so its {cause} says nothing about it"
        if way is not None:
            keep = moved[knob] == way
            if cause == "improved" and not keep:
                return f"the trial moved {knob} {moved[knob]} and improved; {direction} turns that back"
            if cause == "no gain" and keep:
                return f"the trial moved {knob} {moved[knob]} with no gain; {direction} goes further the same way"
        return None
    wanted = remedy(cause, knob)
    if wanted is not None and way is not None and wanted != direction:
        return f"to {direction} {knob} is no remedy for {cause} (the remedy is to {wanted} it)"
    return None


def evidence(diagnosis: str, facts: Mapping[str, Any], history: Sequence[Mapping[str, Any]], metric: Mapping[str, str],
             *, value: float | None = None, best: float | None = None, fail_reason: str | None = None) -> str:
    """What in the numbers shows `diagnosis`, in words a reader can check on the curves.

    `value` is the trial's validation metric, `best` the best before it.
    """
    name = f"val {metric['name']}"
    train = [h.get("train_loss") for h in history]
    val_loss = [h.get("val_loss") for h in history]
    score = [h.get("val_metric") for h in history]
    n = len(history)
    if diagnosis == "improved":
        return (f"{name} {_v(value)}, the first score of the run" if best is None else
                f"{name} {_v(value)} beats the best before it, {_v(best)} ({float(value or 0) - best:+.3g})")
    if diagnosis == "no gain":
        return f"{name} {_v(value)} did not beat the best so far, {_v(best)} ({float(value or 0) - float(best or 0):+.3g})"
    if diagnosis == "failed":
        return str(fail_reason or "no reason given")[:120]
    if diagnosis == "diverged":
        return "the losses became NaN or infinite" if any(
            isinstance(x, float) and not math.isfinite(x) for x in [*train, *val_loss]) else \
            "the loss grew instead of falling until training stopped"
    if diagnosis == "overfitting" and n >= 2:
        low = min(range(n), key=lambda i: _num(val_loss[i]))
        return (f"val loss rose from {_v(val_loss[low])} at epoch {low + 1} to {_v(val_loss[-1])} at epoch {n} "
                f"while train loss fell to {_v(train[-1])}")
    if diagnosis == "underfitting" and n >= 2:
        fall = facts.get("train_loss_fall")
        share = f" ({float(fall):.0%})" if isinstance(fall, int | float) else ""
        return (f"train loss fell only from {_v(train[0])} to {_v(train[-1])}{share} in {n} epochs, "
                f"less than {UNDERFIT_FALL:.0%}")
    if diagnosis == "plateau" and n > 3:
        return f"{name} moved only from {_v(max_or_min(score[:-3], metric))} to {_v(score[-1])} over the last 3 epochs"
    if diagnosis == "unstable":
        return f"val loss reversed direction on {float(facts.get('oscillation') or 0):.0%} of its steps"
    if diagnosis == "stopped too early" and n >= 2:
        way = "rising" if metric["direction"] == "maximize" else "falling"
        losses = f" with train loss falling ({_v(train[-2])} -> {_v(train[-1])})" if _known(train) else ""
        return f"{name} was still {way} at the last epoch ({_v(score[-2])} -> {_v(score[-1])}){losses}"
    if diagnosis == "ran too long":
        return f"the best epoch was {facts.get('best_epoch')} of {n}: the last {n - int(facts.get('best_epoch') or n)} " \
               f"epochs added nothing"
    if diagnosis == "train loss rising" and n >= 1:
        before = train[-2] if n >= 2 else facts.get("start_loss")
        return f"train loss rose from {_v(before)} to {_v(train[-1])} in the last epoch"
    if diagnosis == "val worsening" and n >= 2:
        return (f"{name} went from {_v(score[-2])} to {_v(score[-1])} and val loss from {_v(val_loss[-2])} to "
                f"{_v(val_loss[-1])} in the last epoch")
    if diagnosis == "still improving" and n >= 2:
        return f"{name} moved from {_v(score[-2])} to {_v(score[-1])} in the last epoch"
    if diagnosis == "healthy" and n >= 1:
        losses = f", train loss {_v(train[0])} -> {_v(train[-1])}" if _known(train) else ""
        return f"the curves show no problem ({name} {_v(score[0])} -> {_v(score[-1])}{losses})"
    return f"{diagnosis} by the code-computed flags"


def max_or_min(values: Sequence[Any], metric: Mapping[str, str]) -> Any:
    """The best of `values` in the metric's direction (the best before a plateau)."""
    best = best_of([v for v in values if isinstance(v, int | float)], metric["direction"], float)
    return "n/a" if best is None else best


def _known(values: Sequence[Any]) -> bool:
    """Whether a curve was reported at all (an objective may report its metric alone: its losses are NaN)."""
    return any(isinstance(v, int | float) and math.isfinite(v) for v in values)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")
