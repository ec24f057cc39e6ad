"""The schedule the agents wrote inside a run, for people: change-log lines and a plot.

Input is the JSON-friendly schedule of `graphs.adaptation.run_adaptive_trial`
(one entry per epoch), so a change log or report can be rebuilt from stored
run data without the run itself.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110
KEPT, DROPPED, UNCHECKED = "#2ca02c", "#d62728", "#7f7f7f"


def _v(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (bool, str)) else str(value)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a (diverged)"


def _score(value: Any, metric: str) -> str:
    return f"val {metric} {_number(value)}"


def describe_entry(entry: Mapping[str, Any], metric: str) -> str:
    """One epoch of the schedule in plain English: what changed, why, and what the A/B check did."""
    epoch, source = entry.get("epoch"), entry.get("source")
    changes: Mapping[str, Any] = entry.get("changes") or {}
    previous: Mapping[str, Any] = entry.get("previous") or {}
    reasons: Mapping[str, str] = entry.get("reasons") or {}
    verdict: Mapping[str, Any] = entry.get("verdict") or {}
    parts: list[str] = []
    if source == "start":
        values = ", ".join(f"{k}={_v(v)}" for k, v in (entry.get("values") or {}).items())
        parts.append(f"Epoch {epoch}: started with the trial's config ({values}); {_score(entry.get('val_metric'), metric)}.")
    elif changes:
        what = "; ".join(
            f"{k} {_v(previous[k])} -> {_v(v)}" if k in previous else f"{k} -> {_v(v)}" for k, v in changes.items()
        )
        given = {k: str(reasons[k]).strip().rstrip(".") for k in changes if reasons.get(k)}
        why = next(iter(given.values())) if len(changes) == 1 and given else "; ".join(f"{k}: {r}" for k, r in given.items())
        parts.append(f"Epoch {epoch}: {what}" + (f", because {why}" if why else "") + ".")
        parts.append(_check_text(entry, metric))
    else:
        parts.append(f"Epoch {epoch}: no change ({_why_unchanged(entry, verdict)}); "
                     f"{_score(entry.get('val_metric'), metric)}.")
    for refused in entry.get("refused") or []:
        parts.append(f"Refused {refused.get('knob')}={_v(refused.get('value'))}: {refused.get('reason')}.")
    if verdict.get("correction"):
        parts.append(f"(Checked in code: {verdict['correction']}.)")
    return " ".join(parts)


def _why_unchanged(entry: Mapping[str, Any], verdict: Mapping[str, Any]) -> str:
    source = entry.get("source")
    if source == "evaluator":
        analysis = str(verdict.get("analysis") or "").strip().rstrip(".")
        return "the Evaluator judged the curve healthy" + (f": {analysis}" if analysis else "")
    if source == "advisor":
        if entry.get("refused"):
            return "the Advisor's changes were refused"
        if entry.get("notes"):
            return "the Advisor's changes had no effect: " + "; ".join(entry["notes"])
        effect = str(entry.get("expected_effect") or "").strip().rstrip(".")
        return "the Advisor proposed none" + (f": {effect}" if effect else "")
    return "; ".join(entry.get("notes") or []) or "nothing proposed"


def _check_text(entry: Mapping[str, Any], metric: str) -> str:
    kept = entry.get("kept")
    with_, without = entry.get("val_metric_with"), entry.get("val_metric_without")
    if kept is None:
        return f"Applied without an A/B check; {_score(with_, metric)}."
    scores = f"val {metric} {_number(with_)} with the change, {_number(without)} without"
    if kept:
        return f"A/B check: kept ({scores})."
    return f"A/B check: not kept ({scores}); the run went on without it."


def schedule_lines(schedule: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """The whole schedule as change-log bullet lines, one per epoch."""
    return [f"- {describe_entry(entry, metric)}" for entry in schedule]


def plot_schedule(path: Path, schedule: Sequence[Mapping[str, Any]], metric: str, *, title: str = "") -> Path:
    """Validation metric per epoch beside the value of every knob the agents changed.

    The top panel marks each A/B check: the branch kept and the one dropped.
    Below it, one panel per changed knob (learning rate on a log scale) shows
    the value in effect for each kept epoch. With no change at all, the
    learning rate is drawn so the figure still shows the schedule.
    """
    epochs = [int(e["epoch"]) for e in schedule]
    changed = list(dict.fromkeys(k for e in schedule for k in (e.get("changes") or {}) if e.get("kept") is not False))
    knobs = changed or [k for k in ("learning_rate",) if any(k in (e.get("values") or {}) for e in schedule)]
    fig = Figure(figsize=(7.5, 2.4 + 1.6 * len(knobs)), layout="constrained")
    axes = fig.subplots(1 + len(knobs), 1, sharex=True, squeeze=False)[:, 0]
    top = axes[0]
    top.plot(epochs, [_nan(e.get("val_metric")) for e in schedule], color="black", marker="o", markersize=3.5,
             linewidth=1.4, label=f"val {metric} (kept)")
    for entry in schedule:
        if entry.get("changes"):
            _mark_check(top, entry)
    top.set(ylabel=f"val {metric}", title=title or "Schedule written inside the run")
    handles = [top.lines[0]]
    outcomes = {e.get("kept") for e in schedule if e.get("changes")}
    for kept, colour, label in ((True, KEPT, "with the change: kept"), (False, DROPPED, "with the change: dropped"),
                                (None, UNCHECKED, "change applied unchecked")):
        if kept in outcomes:
            handles.append(top.scatter([], [], color=colour, marker="^", label=label))
    if outcomes & {True, False}:
        handles.append(top.scatter([], [], facecolors="none", edgecolors="black", marker="s",
                                   label="without the change"))
    top.legend(handles=handles, fontsize=8, loc="best")
    for ax, knob in zip(axes[1:], knobs, strict=True):
        values = [(e["values"] or {}).get(knob) for e in schedule]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)
        if numeric:
            ax.step(epochs, [_nan(v) for v in values], where="mid", color="#1f77b4", marker="o", markersize=3)
            positive = [v for v in values if isinstance(v, (int, float)) and v > 0]
            if knob == "learning_rate" and positive and len(positive) == len(values):
                ax.set_yscale("log")
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            ax.step(epochs, [labels.index(str(v)) for v in values], where="mid", color="#1f77b4", marker="o",
                    markersize=3)
            ax.set_yticks(range(len(labels)), labels)
        ax.set(ylabel=knob)
        ax.grid(alpha=0.3)
    top.grid(alpha=0.3)
    axes[-1].set(xlabel="epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def _mark_check(ax: Any, entry: Mapping[str, Any]) -> None:
    epoch, kept = int(entry["epoch"]), entry.get("kept")
    with_, without = _nan(entry.get("val_metric_with")), _nan(entry.get("val_metric_without"))
    if kept is None:
        ax.scatter([epoch], [with_], color=UNCHECKED, marker="^", zorder=3)
        return
    ax.scatter([epoch], [with_], color=KEPT if kept else DROPPED, marker="^", zorder=3)
    ax.scatter([epoch], [without], facecolors="none", edgecolors="black", marker="s", zorder=3)
    if math.isfinite(with_) and math.isfinite(without):
        ax.plot([epoch, epoch], [with_, without], color="black", linewidth=0.6, linestyle=":")


def _nan(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
