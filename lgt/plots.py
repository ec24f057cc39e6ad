"""Figures for the reports: plain numbers in, one PNG out.

The functions take lists of numbers, not studies, so what a figure shows
is decided in `lgt.report` and each figure can be checked on its own.
They draw on a bare `Figure` (no pyplot), so nothing depends on a display
or on global state. Each method keeps one colour in every figure, so a
reader learns it once.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

DPI = 110
METHOD_COLOURS = {"lgt": "#d62728", "tpe": "#1f77b4", "gp": "#2ca02c", "grid": "#ff7f0e", "random": "#9467bd",
                  "default": "#7f7f7f"}
_SPARE_COLOURS = ("#8c564b", "#e377c2", "#bcbd22", "#17becf")
_TARGET_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def method_colour(method: str) -> str:
    """The method's colour; a method outside the known six gets a stable one from its name."""
    return METHOD_COLOURS.get(method) or _SPARE_COLOURS[zlib.crc32(method.encode()) % len(_SPARE_COLOURS)]


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


def trial_values(path: Path, *, title: str, ylabel: str, colour: str, numbers: Sequence[int],
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
        ax.scatter([numbers[default_index]], [default_value], color=METHOD_COLOURS["default"], marker="s", s=44,
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


def llm_share(path: Path, *, title: str, shares: dict[str, list[list[tuple[int, float]]]]) -> Path:
    """LLM share of each round's time: one faint dot per run and round, the median per round as a line."""
    fig = Figure(figsize=(7.5, 4.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, runs) in enumerate(shares.items()):
        colour = METHOD_COLOURS["lgt"] if len(shares) == 1 else _TARGET_COLOURS[i % len(_TARGET_COLOURS)]
        points = [p for run in runs for p in run]
        if not points:
            continue
        ax.scatter([r for r, _ in points], [v for _, v in points], color=colour, s=16, alpha=0.35, zorder=2)
        rounds = sorted({r for r, _ in points})
        medians = [float(np.median([s for r2, s in points if r2 == r])) for r in rounds]
        ax.plot(rounds, medians, color=colour, linewidth=2, marker="o", markersize=4, zorder=3,
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
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path
