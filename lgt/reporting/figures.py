"""Which figures a report shows, and what goes into each: studies in, PNG paths out.

`lgt.reporting.plots` draws; this module decides the series, labels and
file names. File names use the target's label (a CSV's stem, never its
path).
"""

from __future__ import annotations

from pathlib import Path

from lgt import methods
from lgt.direction import best_of, direction_of
from lgt.reporting import plots
from lgt.reporting.store import Run
from lgt.reporting.summary import Row, target_bests, threshold
from lgt.reporting.tables import Column, columns
from lgt.reporting.text import as_float, as_int, fixed, plot_text
from lgt.runs import slug


def ylabel(metric: str, maximize: bool, so_far: bool = True) -> str:
    what = f"best validation {metric} so far" if so_far else f"validation {metric}"
    return f"{what}\n({'higher' if maximize else 'lower'} is better)"


def bench_figures(runs: list[Run], rows: list[Row], out_dir: Path) -> dict[str, list[Path]]:
    """The PNGs, by kind; a target without a single completed trial gets none."""
    bests = target_bests(runs)
    figures: dict[str, list[Path]] = {"convergence": [], "curves": [], "llm_share": []}
    for col in columns(rows):
        mine = [r for r in runs if r.target == col.target and not r.failed and r.best is not None]
        if not mine:
            continue
        name = slug(col.target)
        figures["convergence"].append(_convergence_figure(col, mine, bests.get(col.target),
                                                          out_dir / f"convergence_{name}.png"))
        figures["curves"].append(_curves_figure(col, mine, out_dir / f"curves_{name}.png"))
    share = _llm_share_figure(runs, out_dir / "llm_share.png")
    if share is not None:
        figures["llm_share"].append(share)
    return figures


def _convergence_figure(col: Column, runs: list[Run], best: float | None, path: Path) -> Path:
    series = [plots.Series(methods.label(m), methods.colour(m),
                           [r.best_so_far() for r in runs if r.method == m])
              for m in sorted(dict.fromkeys(r.method for r in runs), key=methods.rank)]
    reference = None if best is None else threshold(best, 0.95, col.maximize)
    label = "95% of the best found" if col.maximize else "within 95% of the best found"
    seeds = len({r.attrs.get("seed") for r in runs})
    return plots.convergence(path, title=f"{plot_text(col.target)}: best validation {col.metric} so far\n"
                                         f"median over {seeds} seed{'s' if seeds != 1 else ''}, "
                                         f"band: interquartile range",
                             ylabel=ylabel(col.metric, col.maximize), series=series, reference=reference,
                             reference_label=label)


def _curves_figure(col: Column, runs: list[Run], path: Path) -> Path:
    curves = []
    for method in sorted(dict.fromkeys(r.method for r in runs), key=methods.rank):
        top = best_of([r for r in runs if r.method == method], direction_of(col.maximize),
                      lambda r: None if r.best is None else r.best.value)
        if top is None or top.best is None:
            continue
        label = (f"{methods.label(method)} (seed {top.attrs.get('seed')}, "
                 f"val {fixed(float(top.best.value or 0), col.decimals())})")
        curves.append(plots.Curve(label, methods.colour(method), list(top.best.user_attrs.get("history", [])),
                                  as_int(top.best.user_attrs.get("best_epoch"))))
    return plots.learning_curves(path, title=f"{plot_text(col.target)}: learning curves of each method's best configuration "
                                             f"(best seed by validation)", metric_label=col.metric, curves=curves)


def _llm_share_figure(runs: list[Run], path: Path) -> Path | None:
    """LGT's LLM share of each round's time, per target; None when no LGT trial recorded its LLM time."""
    shares: dict[str, list[list[tuple[int, float]]]] = {}
    for run in runs:
        if not methods.is_agents(run.method):
            continue
        points = []
        for i, trial in enumerate(run.trials, start=1):
            llm = as_float(trial.user_attrs.get("llm_seconds"))
            total = (llm or 0.0) + (as_float(trial.user_attrs.get("seconds")) or 0.0)
            if llm is not None and total > 0:
                points.append((as_int(trial.user_attrs.get("round")) or i, llm / total))
        if points:
            shares.setdefault(plot_text(run.target), []).append(points)
    if not shares:
        return None
    return plots.llm_share(path, title="LGT: share of each round's time spent on the LLM", colour=methods.colour("lgt"),
                           shares=shares)


def run_figures(run: Run, out_dir: Path) -> list[Path]:
    colour = methods.colour(run.method)
    convergence = plots.trial_values(out_dir / "convergence.png",
                                     title=f"{run.name}: validation {run.metric} per trial",
                                     ylabel=ylabel(run.metric, run.maximize, so_far=False), colour=colour,
                                     default_colour=methods.colour("default"),
                                     numbers=[t.number for t in run.trials], values=run.values(), best_so_far=run.best_so_far(),
                                     default_index=run.default_index())
    assert run.best is not None
    curves = [plots.Curve(f"best config (trial {run.best.number})", colour,
                          list(run.best.user_attrs.get("history", [])),
                          as_int(run.best.user_attrs.get("best_epoch")))]
    default = run.default_index()
    if default is not None and run.trials[default].number != run.best.number:
        trial = run.trials[default]
        curves.append(plots.Curve(f"default config (trial {trial.number})", methods.colour("default"),
                                  list(trial.user_attrs.get("history", [])),
                                  as_int(trial.user_attrs.get("best_epoch"))))
    learning = plots.learning_curves(out_dir / "curves.png", title=f"{run.name}: learning curves",
                                     metric_label=run.metric, curves=curves)
    return [convergence, learning]
