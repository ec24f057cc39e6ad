"""Figures for the reports: plain numbers in, one PNG out.

The functions take lists of numbers, not studies, so what a figure shows
is decided in `lgt.reporting.figures` and each figure can be checked on its
own. They draw on a bare `Figure` (no pyplot), so nothing depends on a
display or on global state. Colours come from the caller (each method keeps
its colour from `lgt.methods` in every figure, so a reader learns it once).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from lgt.reporting.writing import write_with

DPI = 110
_TARGET_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
KEPT, DROPPED, UNCHECKED = "#2ca02c", "#d62728", "#7f7f7f"


@dataclass(frozen=True)
class Series:
    """Best-so-far values of one method's runs (one list per seed; NaN before a first success)."""

    label: str
    colour: str
    runs: list[list[float]]


@dataclass(frozen=True)
class Curve:
    """One trial's per-epoch history as it will be drawn."""

    label: str
    colour: str
    history: list[dict[str, Any]]
    best_epoch: int | None = None


def convergence(path: Path, *, title: str, ylabel: str, series: Sequence[Series],
                reference: float | None = None, reference_label: str = "") -> Path:
    """Median best-so-far per trial with an interquartile band; a one-trial method is a flat line."""
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    width = max((len(run) for s in series for run in s.runs), default=1)
    x = np.arange(1, width + 1)
    for i, s in enumerate(series):
        if not any(s.runs):
            continue
        median, low, high = _band(s.runs)
        if len(median) == 1 and width > 1:
            ax.axhline(median[0], color=s.colour, linestyle="--", linewidth=1.6, label=f"{s.label}: one trial")
            continue
        n = len(median)
        ax.plot(x[:n], median, color=s.colour, linewidth=_width(i, len(series)), drawstyle="steps-post",
                label=s.label, marker="o" if n <= 40 else None, markersize=3.5)
        if len(s.runs) > 1:
            ax.fill_between(x[:n], low, high, color=s.colour, alpha=0.18, step="post", linewidth=0)
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, color="black", linestyle=":", linewidth=1, label=reference_label)
    ax.set(title=title, xlabel="trial (in the order run)", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax)
    return _save(fig, path)


def trial_values(path: Path, *, title: str, ylabel: str, colour: str, default_colour: str, numbers: Sequence[int],
                 values: Sequence[float | None], best_so_far: Sequence[float], default_index: int | None) -> Path:
    """One run: each trial's validation value as a dot over its trial number, the best so far as a step line."""
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    ok = [i for i, v in enumerate(values) if v is not None and i != default_index]
    if ok:
        ax.scatter([numbers[i] for i in ok], [values[i] or 0.0 for i in ok], color=colour, s=28, alpha=0.75,
                   zorder=3, label="trial")
    default_value = None if default_index is None else values[default_index]
    if default_index is not None and default_value is not None:
        ax.scatter([numbers[default_index]], [default_value], color=default_colour, marker="s", s=44,
                   zorder=4, label="default config")
    ax.plot(numbers, best_so_far, color=colour, linewidth=2, drawstyle="steps-post", label="best so far")
    failed = [numbers[i] for i, v in enumerate(values) if v is None]
    if failed:
        ax.scatter(failed, [0.03] * len(failed), transform=ax.get_xaxis_transform(), marker="x", color="black",
                   s=40, zorder=4, label="failed trial")
    ax.set(title=title, xlabel="trial number (as in trials.csv)", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax)
    return _save(fig, path)


def learning_curves(path: Path, *, title: str, metric_label: str, curves: Sequence[Curve]) -> Path:
    """Validation metric per epoch on the left, training and validation loss on the right."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    losses: list[float] = []
    for i, c in enumerate(curves):
        epochs = [int(e["epoch"]) for e in c.history]
        left.plot(epochs, [_number(e.get("val_metric")) for e in c.history], color=c.colour,
                  linewidth=_width(i, len(curves)) - 0.4, label=c.label)
        kept = [e for e in c.history if e.get("epoch") == c.best_epoch]
        if kept:
            left.plot([kept[0]["epoch"]], [_number(kept[0].get("val_metric"))], marker="*", markersize=12,
                      color=c.colour, markeredgecolor="black", linestyle="none")
        for key, style in (("val_loss", "-"), ("train_loss", "--")):
            series = [_number(e.get(key)) for e in c.history]
            losses += [v for v in series if math.isfinite(v)]
            right.plot(epochs, series, color=c.colour, linestyle=style, linewidth=1.5)
    left.set(title=f"validation {metric_label} per epoch", xlabel="epoch", ylabel=f"validation {metric_label}")
    left.plot([], [], marker="*", markersize=12, color="white", markeredgecolor="black", linestyle="none",
              label="epoch whose weights were kept")
    right.set(title="loss per epoch", xlabel="epoch", ylabel="loss")
    if losses and min(losses) > 0 and max(losses) / min(losses) > 20:
        right.set_yscale("log")
        right.set_ylabel("loss (log scale)")
    right.legend(handles=[Line2D([], [], color="0.3", linestyle="-", label="validation loss"),
                          Line2D([], [], color="0.3", linestyle="--", label="training loss")], fontsize=9)
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    left.legend(fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def llm_share(path: Path, *, title: str, colour: str, shares: dict[str, list[list[tuple[int, float]]]]) -> Path:
    """LLM share of each round's time: one faint dot per run and round, the median per round as a line."""
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, runs) in enumerate(shares.items()):
        line = colour if len(shares) == 1 else _TARGET_COLOURS[i % len(_TARGET_COLOURS)]
        points = [p for run in runs for p in run]
        if not points:
            continue
        ax.scatter([r for r, _ in points], [v for _, v in points], color=line, s=16, alpha=0.35, zorder=2)
        rounds = sorted({r for r, _ in points})
        medians = [float(np.median([s for r2, s in points if r2 == r])) for r in rounds]
        ax.plot(rounds, medians, color=line, linewidth=2, marker="o", markersize=4, zorder=3,
                label=f"{label} (median of {len(runs)} run{'s' if len(runs) != 1 else ''})")
    ax.set(title=title, xlabel="round", ylabel="LLM time / (LLM + training time)", ylim=(0, 1.02))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _finish(ax)
    return _save(fig, path)


def _band(runs: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles per trial over the runs that got that far and had a value."""
    width = max(len(run) for run in runs)
    median, low, high = (np.full(width, np.nan) for _ in range(3))
    for i in range(width):
        values = [run[i] for run in runs if i < len(run) and math.isfinite(run[i])]
        if values:
            low[i], median[i], high[i] = np.percentile(values, [25, 50, 75])
    return median, low, high


def _width(index: int, count: int) -> float:
    """Lines drawn first are wider, so one that a later, equal line covers still shows at its edges."""
    return 2.0 + min(0.6 * (count - 1 - index), 2.4)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _finish(ax: Axes) -> None:
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=9)


def _save(fig: Figure, path: Path) -> Path:
    return write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"))


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
    top.plot(epochs, [_number(e.get("val_metric")) for e in schedule], color="black", marker="o", markersize=3.5,
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
            ax.step(epochs, [_number(v) for v in values], where="mid", color="#1f77b4", marker="o", markersize=3)
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
    return _save(fig, path)


def _mark_check(ax: Any, entry: Mapping[str, Any]) -> None:
    epoch, kept = int(entry["epoch"]), entry.get("kept")
    with_, without = _number(entry.get("val_metric_with")), _number(entry.get("val_metric_without"))
    if kept is None:
        ax.scatter([epoch], [with_], color=UNCHECKED, marker="^", zorder=3)
        return
    ax.scatter([epoch], [with_], color=KEPT if kept else DROPPED, marker="^", zorder=3)
    ax.scatter([epoch], [without], facecolors="none", edgecolors="black", marker="s", zorder=3)
    if math.isfinite(with_) and math.isfinite(without):
        ax.plot([epoch, epoch], [with_, without], color="black", linewidth=0.6, linestyle=":")
