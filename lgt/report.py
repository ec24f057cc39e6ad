"""Benchmark and run reports, rebuilt from the Optuna storage alone.

Every figure here is read back from the studies, never kept from the run
itself, so `lgt report` can remake a report later, elsewhere, from any
Optuna storage (SQLite or PostgreSQL). Runs are compared on what chose
their configuration, the validation metric; the test metric is read only
for each run's best-by-validation trial, and only to report it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lgt import plots
from lgt.errors import UserError
from lgt.settings import default_storage_url
from lgt.studies import best_trial, counted_trials, epochs_trained, open_storage, redact_url

METHOD_ORDER = ("lgt", "tpe", "tpe-median", "tpe-hyperband", "gp", "grid", "random", "default")
TABLE_NAMES = {"lgt": "LGT", "tpe": "TPE", "gp": "GP", "grid": "Grid", "random": "Random",
               "default": "Default (untuned)", "tpe-median": "TPE + median pruning",
               "tpe-hyperband": "TPE + Hyperband"}
PROSE_NAMES = {"lgt": "LGT", "tpe": "TPE", "gp": "GP", "grid": "grid search", "random": "random search",
               "default": "the untuned default", "tpe-median": "TPE with median pruning",
               "tpe-hyperband": "TPE with Hyperband"}
BENCH_COLUMNS = ("study_name", "bench_id", "target", "method", "seed", "budget", "epoch_budget", "trials_run", "epochs_trained", "status",
                 "fail_reason", "metric", "direction", "best_val_metric", "test_metric", "default_val_metric",
                 "trials_to_95", "trials_to_99", "wall_seconds", "training_seconds", "llm_seconds", "other_seconds",
                 "prompt_tokens", "completion_tokens", "llm_model")

Row = dict[str, Any]


# --- reading the storage -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One study read back: its attrs and the trials that spent budget, in the order they ran."""

    name: str
    attrs: dict[str, Any]
    maximize: bool
    trials: list[FrozenTrial]
    best: FrozenTrial | None

    @property
    def target(self) -> str:
        return str(self.attrs.get("target", "?"))

    @property
    def method(self) -> str:
        return str(self.attrs.get("method", "?"))

    @property
    def metric(self) -> str:
        return metric_label(self.attrs.get("metric"))

    @property
    def failed(self) -> bool:
        return self.attrs.get("status") == "failed"

    def values(self) -> list[float | None]:
        """Each trial's validation value; None for a failed trial."""
        return [float(t.value) if t.state == TrialState.COMPLETE and t.value is not None else None
                for t in self.trials]

    def best_so_far(self) -> list[float]:
        """The best validation value after each trial; NaN until the first trial completes."""
        out, best = [], math.nan
        for value in self.values():
            if value is not None and (math.isnan(best) or _better(value, best, self.maximize)):
                best = value
            out.append(best)
        return out

    def default_index(self) -> int | None:
        return next((i for i, t in enumerate(self.trials) if t.user_attrs.get("source") == "default"), None)


def load_runs(storage_url: str, study_names: Sequence[str]) -> list[Run]:
    """Read the named studies; a missing storage or study is a UserError naming it."""
    storage = _open_existing(storage_url)
    return [_read_run(_load_study(storage, storage_url, name)) for name in dict.fromkeys(study_names)]


def _open_existing(storage_url: str) -> optuna.storages.BaseStorage:
    """Open a storage for reading, without creating an empty SQLite file for a mistyped path."""
    if storage_url.startswith("sqlite:///"):
        file = storage_url.removeprefix("sqlite:///").split("?", 1)[0]
        if file and file != ":memory:" and not Path(file).exists():
            raise UserError(f"storage {storage_url} does not exist; pass the storage the runs were written to "
                            f"(--storage)")
    return open_storage(storage_url)


def _load_study(storage: optuna.storages.BaseStorage, storage_url: str, name: str) -> optuna.Study:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise UserError(f"no study {name!r} in storage {redact_url(storage_url)}; pass the storage the runs were "
                        f"written to (--storage)") from None


def _read_run(study: optuna.Study) -> Run:
    trials = [t for t in counted_trials(study) if not t.user_attrs.get("interrupted")]
    return Run(name=study.study_name, attrs=dict(study.user_attrs),
               maximize=study.direction == optuna.study.StudyDirection.MAXIMIZE, trials=trials,
               best=best_trial(study))


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


# --- one row per run -----------------------------------------------------------------------------------------------

def bench_rows(storage_url: str, study_names: list[str]) -> list[Row]:
    """One row per study: outcome, search cost (trials to 95%/99% of the target's best) and time spent.

    "Best" for trials-to-95 is the best validation metric any run in this
    set found on the same target, so the figure compares methods on how
    fast they get close to what was reachable, not to each run's own best.
    """
    return _rows(load_runs(storage_url, study_names))


def _rows(runs: list[Run]) -> list[Row]:
    bests = _target_bests(runs)
    targets = _targets(runs)
    ordered = sorted(runs, key=lambda r: (targets.index(r.target), _method_rank(r.method),
                                          _int(r.attrs.get("seed")), r.name))
    return [_row(run, bests.get(run.target)) for run in ordered]


def _row(run: Run, target_best: float | None) -> Row:
    best = run.best
    wall = _float(run.attrs.get("wall_seconds"))
    training = sum(_float(t.user_attrs.get("seconds")) or 0.0 for t in run.trials)
    llm = _sum_attr(run.trials, "llm_seconds")
    default = run.default_index()
    return {
        "study_name": run.name,
        "bench_id": run.attrs.get("bench_id"),
        "target": run.target,
        "method": run.method,
        "seed": run.attrs.get("seed"),
        "budget": run.attrs.get("trials"),
        "epoch_budget": run.attrs.get("epoch_budget"),
        "trials_run": len(run.trials),
        "epochs_trained": sum(epochs_trained(t) for t in run.trials),
        "status": _status(run),
        "fail_reason": run.attrs.get("fail_reason") if run.failed else None,
        "metric": run.attrs.get("metric"),
        "direction": "maximize" if run.maximize else "minimize",
        "best_val_metric": None if best is None else best.value,
        "test_metric": None if best is None else best.user_attrs.get("test_metric"),
        "default_val_metric": None if default is None else run.values()[default],
        "trials_to_95": _trials_to(run, target_best, 0.95),
        "trials_to_99": _trials_to(run, target_best, 0.99),
        "wall_seconds": None if wall is None else round(wall, 3),
        "training_seconds": round(training, 3),
        "llm_seconds": None if llm is None else round(llm, 3),
        "other_seconds": None if wall is None else round(max(0.0, wall - training - (llm or 0.0)), 3),
        "prompt_tokens": _int_or_none(_sum_attr(run.trials, "llm_prompt_tokens")),
        "completion_tokens": _int_or_none(_sum_attr(run.trials, "llm_completion_tokens")),
        "llm_model": run.attrs.get("llm_model"),
    }


def _status(run: Run) -> str:
    """The recorded status; a run that never recorded one is complete once its budget is spent."""
    if run.attrs.get("status"):
        return str(run.attrs["status"])
    epoch_budget = _int(run.attrs.get("epoch_budget"))
    if epoch_budget and sum(epochs_trained(t) for t in run.trials) >= epoch_budget:
        return "complete"
    return "complete" if len(run.trials) >= (_int(run.attrs.get("trials")) or 1) else "incomplete"


def _target_bests(runs: Iterable[Run]) -> dict[str, float]:
    """The best validation metric any successful run found, per target."""
    bests: dict[str, float] = {}
    for run in runs:
        if run.failed or run.best is None or run.best.value is None:
            continue
        value = float(run.best.value)
        if run.target not in bests or _better(value, bests[run.target], run.maximize):
            bests[run.target] = value
    return bests


def threshold(best: float, fraction: float, maximize: bool) -> float:
    """The value a run must reach to be within `fraction` of `best`.

    Maximize: `fraction * best`; minimize: `best / fraction` (an MAE of 43
    is "within 95%" up to 45.3). A negative best flips the operation, so
    the threshold always sits on the worse side of it.
    """
    shrink = (best >= 0) == maximize
    return best * fraction if shrink else best / fraction


def _trials_to(run: Run, target_best: float | None, fraction: float) -> int | None:
    """The 1-based trial count at which the run's best so far first reached the threshold."""
    if target_best is None:
        return None
    goal = threshold(target_best, fraction, run.maximize)
    for i, value in enumerate(run.best_so_far(), start=1):
        if not math.isnan(value) and (value >= goal if run.maximize else value <= goal):
            return i
    return None


def _sum_attr(trials: Iterable[FrozenTrial], key: str) -> float | None:
    """Sum of a numeric trial attr; None when no trial carries it (not measured is not zero)."""
    values = [_float(t.user_attrs.get(key)) for t in trials]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


# --- the benchmark report ------------------------------------------------------------------------------------------

def write_bench_report(storage_url: str, study_names: list[str], out_dir: Path, *, title: str,
                       machine: str | None = None) -> Path:
    """Write summary.csv, table.md, the figures and report.md into `out_dir`; returns report.md's path.

    Args:
        storage_url: the Optuna storage holding the studies (its password never reaches the files).
        study_names: the runs of the benchmark, one study each.
        out_dir: where the files go (created if needed).
        title: the report's heading.
        machine: what the runs ran on; by default the study attr `machine`, else this machine.
    """
    runs = load_runs(storage_url, study_names)
    rows = _rows(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_summary_csv(rows, out_dir / "summary.csv")
    tables = bench_tables(rows)
    (out_dir / "table.md").write_text(tables)
    figures = _bench_figures(runs, rows, out_dir)
    page = _bench_page(runs, rows, tables, figures, title=title, machine=_machine(runs, machine),
                       storage_url=storage_url)
    path = out_dir / "report.md"
    path.write_text(page)
    return path


def write_summary_csv(rows: list[Row], path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=BENCH_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class Group:
    """The runs of one method on one target, as one table cell sums them up."""

    method: str
    rows: list[Row]

    @property
    def ok(self) -> list[Row]:
        return [r for r in self.rows if r["status"] != "failed" and r["best_val_metric"] is not None]

    @property
    def failed(self) -> list[Row]:
        return [r for r in self.rows if r not in self.ok]

    def mean(self, key: str) -> float | None:
        values = [float(r[key]) for r in self.ok if r[key] is not None]
        return statistics.fmean(values) if values else None

    def std(self, key: str) -> float | None:
        values = [float(r[key]) for r in self.ok if r[key] is not None]
        return statistics.stdev(values) if len(values) > 1 else None

    def wall(self) -> float | None:
        values = [float(r["wall_seconds"]) for r in self.ok if r["wall_seconds"] is not None]
        return statistics.fmean(values) if values else None


@dataclass(frozen=True)
class Column:
    """One target: its metric, direction and the method groups run on it."""

    target: str
    metric: str
    maximize: bool
    groups: list[Group]

    @property
    def header(self) -> str:
        if not self.metric:
            return _md(self.target)  # every run failed before recording a metric: its direction is unknown too
        return f"{_md(self.target)} ({self.metric} {'↑' if self.maximize else '↓'})"

    def ranked(self) -> list[Group]:
        """Groups with a test metric, best mean first (ties keep the method order)."""
        scored = [g for g in self.groups if g.mean("test_metric") is not None]
        sign = -1.0 if self.maximize else 1.0
        return sorted(scored, key=lambda g: sign * (g.mean("test_metric") or 0.0))

    def decimals(self) -> int:
        values = [abs(float(r[k])) for g in self.groups for r in g.ok for k in ("best_val_metric", "test_metric")
                  if r[k] is not None]
        top = max(values, default=0.0)
        return 3 if top < 10 else 2 if top < 100 else 1


def columns(rows: list[Row]) -> list[Column]:
    """Targets in the order they first appear, each with its methods in the report's method order."""
    out = []
    for target in dict.fromkeys(r["target"] for r in rows):
        mine = [r for r in rows if r["target"] == target]
        methods = sorted(dict.fromkeys(r["method"] for r in mine), key=_method_rank)
        groups = [Group(m, [r for r in mine if r["method"] == m]) for m in methods]
        known = [r for r in mine if r["metric"]]
        metric = metric_label(known[0]["metric"]) if known else ""
        out.append(Column(target, metric, bool(known) and known[0]["direction"] == "maximize", groups))
    return out


def bench_tables(rows: list[Row]) -> str:
    """table.md: the result table (test metric of the chosen configs) and the search-cost table."""
    cols = columns(rows)
    return "\n".join([
        "## Test metric of the chosen configuration", "",
        ("Each run chose its configuration by the validation metric; the cell gives that configuration's test "
        "metric, mean ± std over seeds, with the validation metric (mean) in brackets. ↑: higher is better, "
        "↓: lower is better. Best mean per target in **bold**."), "",
        *_result_table(cols), "",
        "## Search cost", "",
        ("Trials until a run's best validation metric came within 95% of the best any method found on that target "
        "(mean over the runs that got there), wall time per run (mean), and epochs trained per run (mean; "
         "A/B branches of in-run checks included, so equal epoch budgets show as equal numbers)."), "",
        *_cost_table(cols), "",
    ])


def _method_table(cols: list[Column], cell: Callable[[Group, Column], str]) -> list[str]:
    """Rows are methods, columns are targets; `cell` renders one method's runs on one target."""
    lines = _table_head(cols)
    for method in _methods(cols):
        cells = []
        for col in cols:
            group = next((g for g in col.groups if g.method == method), None)
            cells.append("" if group is None else cell(group, col))
        lines.append(_table_line([TABLE_NAMES.get(method, method), *cells]))
    return lines


def _result_table(cols: list[Column]) -> list[str]:
    def cell(group: Group, col: Column) -> str:
        ranked = col.ranked()
        return _result_cell(group, col.decimals(), ranked[0].mean("test_metric") if ranked else None)

    return _method_table(cols, cell)


def _result_cell(group: Group, decimals: int, best_mean: float | None) -> str:
    if not group.ok:
        return _failed_cell(group)
    mean, std = group.mean("test_metric"), group.std("test_metric")
    text = "n/a" if mean is None else _fmt(mean, decimals) + ("" if std is None else f" ± {_fmt(std, decimals)}")
    if mean is not None and mean == best_mean:
        text = f"**{text}**"
    notes = [f"val {_fmt(group.mean('best_val_metric'), decimals)}"]
    if group.failed:
        notes.append(f"{len(group.failed)} of {len(group.rows)} runs failed")
    return f"{text} ({'; '.join(notes)})"


def _failed_cell(group: Group) -> str:
    reasons = [r["fail_reason"] for r in group.rows if r["fail_reason"]]
    if not reasons:
        return "failed" if any(r["status"] == "failed" for r in group.rows) else "no trial completed"
    reason = " ".join(str(reasons[0]).split())
    return "failed: " + _md(reason if len(reason) <= 80 else reason[:79] + "…")


def _cost_table(cols: list[Column]) -> list[str]:
    return _method_table(cols, lambda group, _: _cost_cell(group))


def _cost_cell(group: Group) -> str:
    if not group.ok:
        return "failed"
    reached = [int(r["trials_to_95"]) for r in group.ok if r["trials_to_95"] is not None]
    trials = "never" if not reached else _trials(statistics.fmean(reached))
    if reached and len(reached) < len(group.ok):
        trials += f" ({len(group.ok) - len(reached)} of {len(group.ok)} never)"
    wall = group.wall()
    epochs = group.mean("epochs_trained")
    return (f"{trials} · {'wall n/a' if wall is None else _seconds(wall)}"
            + ("" if epochs is None else f" · {epochs:.0f} epochs"))


def _table_head(cols: list[Column]) -> list[str]:
    return [_table_line(["method", *(c.header for c in cols)]), _table_line(["---"] * (len(cols) + 1))]


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _methods(cols: list[Column]) -> list[str]:
    return sorted(dict.fromkeys(g.method for c in cols for g in c.groups), key=_method_rank)


def _reading(cols: list[Column]) -> str:
    """Two or three sentences read off the numbers: who won where, by how much, at what cost."""
    sentences = [_target_sentence(c) for c in cols]
    sentences.append("Every run chose its configuration by the validation metric alone; the test figures are "
                     "those of the chosen configurations and played no part in choosing them.")
    return " ".join(sentences)


def _target_sentence(col: Column) -> str:
    ranked = col.ranked()
    if not ranked:
        return f"On {col.target} no method produced a result."
    win, d = ranked[0], col.decimals()
    word = "higher" if col.maximize else "lower"
    win_mean = win.mean("test_metric") or 0.0
    runs = "one run" if len(win.ok) == 1 else f"mean of {len(win.ok)} runs"
    text = (f"On {col.target}, {PROSE_NAMES.get(win.method, win.method)} scored best on test {col.metric} "
            f"({_fmt(win_mean, d)}, {runs})")
    clauses = []
    if len(ranked) > 1:
        runner = ranked[1]
        clauses.append(_margin(win_mean, runner, f"the runner-up, {PROSE_NAMES.get(runner.method, runner.method)}",
                               d, word))
    default = next((g for g in ranked if g.method == "default"), None)
    if default is not None and default is not win and (len(ranked) < 2 or default is not ranked[1]):
        clauses.append(_margin(win_mean, default, "the untuned default", d, word))
    if clauses:
        text += ", " + " and ".join(clauses)
    if len(ranked) > 1:
        text += _cost_clause(win, ranked[1])
    return text + "."


def _margin(win_mean: float, other: Group, name: str, decimals: int, word: str) -> str:
    other_mean = other.mean("test_metric") or 0.0
    gap = abs(win_mean - other_mean)
    if round(gap, decimals) == 0:
        return f"level with {name} ({_fmt(other_mean, decimals)})"
    return f"{_fmt(gap, decimals)} {word} than {name} ({_fmt(other_mean, decimals)})"


def _cost_clause(win: Group, runner: Group) -> str:
    a, b = win.wall(), runner.wall()
    if a is None or b is None or b <= 0:
        return ""
    return (f", taking {a / b:.1f}× the wall time of {PROSE_NAMES.get(runner.method, runner.method)} per run "
            f"({_seconds(a)} against {_seconds(b)})")


def _bench_figures(runs: list[Run], rows: list[Row], out_dir: Path) -> dict[str, list[Path]]:
    """The PNGs, by kind; a target without a single completed trial gets none."""
    bests = _target_bests(runs)
    figures: dict[str, list[Path]] = {"convergence": [], "curves": [], "llm_share": []}
    for col in columns(rows):
        mine = [r for r in runs if r.target == col.target and not r.failed and r.best is not None]
        if not mine:
            continue
        slug = _slug(col.target)
        figures["convergence"].append(_convergence_figure(col, mine, bests.get(col.target),
                                                          out_dir / f"convergence_{slug}.png"))
        figures["curves"].append(_curves_figure(col, mine, out_dir / f"curves_{slug}.png"))
    share = _llm_share_figure(runs, out_dir / "llm_share.png")
    if share is not None:
        figures["llm_share"].append(share)
    return figures


def _convergence_figure(col: Column, runs: list[Run], best: float | None, path: Path) -> Path:
    series = [plots.Series(TABLE_NAMES.get(m, m), plots.method_colour(m),
                           [r.best_so_far() for r in runs if r.method == m])
              for m in sorted(dict.fromkeys(r.method for r in runs), key=_method_rank)]
    reference = None if best is None else threshold(best, 0.95, col.maximize)
    label = "95% of the best found" if col.maximize else "within 95% of the best found"
    seeds = len({r.attrs.get("seed") for r in runs})
    return plots.convergence(path, title=f"{col.target}: best validation {col.metric} so far\n"
                                         f"median over {seeds} seed{'s' if seeds != 1 else ''}, "
                                         f"band: interquartile range",
                             ylabel=_ylabel(col.metric, col.maximize), series=series, reference=reference,
                             reference_label=label)


def _curves_figure(col: Column, runs: list[Run], path: Path) -> Path:
    curves = []
    for method in sorted(dict.fromkeys(r.method for r in runs), key=_method_rank):
        top = _best_run([r for r in runs if r.method == method], col.maximize)
        if top.best is None:
            continue
        label = (f"{TABLE_NAMES.get(method, method)} (seed {top.attrs.get('seed')}, "
                 f"val {_fmt(float(top.best.value or 0), col.decimals())})")
        curves.append(plots.Curve(label, plots.method_colour(method), list(top.best.user_attrs.get("history", [])),
                                  _int_or_none(top.best.user_attrs.get("best_epoch"))))
    return plots.learning_curves(path, title=f"{col.target}: learning curves of each method's best configuration "
                                             f"(best seed by validation)", metric_label=col.metric, curves=curves)


def _best_run(runs: list[Run], maximize: bool) -> Run:
    sign = 1.0 if maximize else -1.0
    return max(runs, key=lambda r: sign * float(r.best.value or 0) if r.best else -math.inf)


def _llm_share_figure(runs: list[Run], path: Path) -> Path | None:
    """LGT's LLM share of each round's time, per target; None when no LGT trial recorded its LLM time."""
    shares: dict[str, list[list[tuple[int, float]]]] = {}
    for run in runs:
        if run.method != "lgt":
            continue
        points = []
        for i, trial in enumerate(run.trials, start=1):
            llm = _float(trial.user_attrs.get("llm_seconds"))
            total = (llm or 0.0) + (_float(trial.user_attrs.get("seconds")) or 0.0)
            if llm is not None and total > 0:
                points.append((_int_or_none(trial.user_attrs.get("round")) or i, llm / total))
        if points:
            shares.setdefault(run.target, []).append(points)
    if not shares:
        return None
    return plots.llm_share(path, title="LGT: share of each round's time spent on the LLM", shares=shares)


def _bench_page(runs: list[Run], rows: list[Row], tables: str, figures: dict[str, list[Path]], *, title: str,
                machine: str, storage_url: str) -> str:
    cols = columns(rows)
    lines = [f"# {title}", "", *_facts(runs, rows, machine, storage_url), "", "## Reading", "", _reading(cols), "",
             tables.rstrip(), ""]
    sections = (("convergence", "## Convergence",
                 ("Best validation metric so far after each trial: median over seeds, band from the first to the "
                 "third quartile; the dotted line is the 95% mark used for trials-to-95.")),
                ("curves", "## Learning curves",
                 ("Per-epoch validation metric and losses of each method's best configuration (its best seed by "
                 "validation); the star marks the epoch whose weights were kept.")),
                ("llm_share", "## Time spent on the LLM",
                 "Share of each LGT round's time spent waiting for the three agents, against training the trial."))
    for kind, heading, caption in sections:
        if figures[kind]:
            lines += [heading, "", caption, ""]
            lines += [f"![{path.stem.replace('_', ' ')}]({path.name})" for path in figures[kind]] + [""]
    return "\n".join(lines)


def _facts(runs: list[Run], rows: list[Row], machine: str, storage_url: str) -> list[str]:
    benches = sorted({str(r["bench_id"]) for r in rows if r["bench_id"]})
    models = sorted({str(r["llm_model"]) for r in rows if r["method"] == "lgt" and r["llm_model"]})
    has_lgt = any(r["method"] == "lgt" for r in rows)
    budgets = sorted({int(r["budget"]) for r in rows if r["method"] != "default" and r["budget"] is not None})
    seeds = sorted({int(r["seed"]) for r in rows if r["seed"] is not None})
    epochs = sorted({int(r["epoch_budget"]) for r in rows if r["method"] != "default" and r["epoch_budget"]})
    epoch_note = f" and at most {' / '.join(map(str, epochs))} epochs (A/B branches included)" if epochs else ""
    targets = list(dict.fromkeys(r["target"] for r in rows))
    methods = sorted(dict.fromkeys(r["method"] for r in rows), key=_method_rank)
    llm = ", ".join(models) if models else ("not recorded" if has_lgt else "none (no LGT runs)")
    failed = sum(1 for r in rows if r["status"] == "failed")
    notes = ([f"{failed} failed"] if failed else []) + ([f"benchmark {', '.join(benches)}"] if benches else [])
    return [
        (f"- **Runs:** {len(runs)} ({', '.join(TABLE_NAMES.get(m, m) for m in methods)} on {', '.join(targets)})"
        f"{''.join('; ' + n for n in notes)}; read from the Optuna storage `{redact_url(storage_url)}`."),
        f"- **LLM used by LGT's agents:** {llm}.",
        f"- **Machine:** {machine}.",
        (f"- **Budget:** {' / '.join(map(str, budgets)) or '?'} trials{epoch_note} per run, the default config first "
        f"(the untuned default runs it once); seeds {', '.join(map(str, seeds)) or '?'}."),
        "- **Data:** [summary.csv](summary.csv) (one row per run), [table.md](table.md).",
    ]


def _machine(runs: list[Run], given: str | None) -> str:
    """What the runs ran on: as given, else as the runs recorded it, else this machine."""
    if given:
        return given
    recorded = next((str(r.attrs["machine"]) for r in runs if r.attrs.get("machine")), None)
    return recorded or f"{describe_machine()} (this machine, detected when the report was written)"


def describe_machine() -> str:
    """CPU model, usable cores, GPU and software, in one line."""
    import torch  # here, not at the top: only the machine line needs it

    cpu = _cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {cores} CPU cores, {gpu}; {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, optuna {optuna.__version__}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


# --- the report of one run -----------------------------------------------------------------------------------------

def write_run_report(storage_url: str, study_name: str, out_dir: Path) -> Path:
    """Write convergence.png, curves.png and report.md for one `lgt tune` or `lgt baseline` run."""
    run = load_runs(storage_url, [study_name])[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _run_figures(run, out_dir) if run.best is not None else []
    path = out_dir / "report.md"
    path.write_text(_run_page(run, _rows([run])[0], figures, out_dir))
    return path


def _run_figures(run: Run, out_dir: Path) -> list[Path]:
    colour = plots.method_colour(run.method)
    convergence = plots.trial_values(out_dir / "convergence.png",
                                     title=f"{run.name}: validation {run.metric} per trial",
                                     ylabel=_ylabel(run.metric, run.maximize, so_far=False), colour=colour,
                                     numbers=[t.number for t in run.trials], values=run.values(), best_so_far=run.best_so_far(),
                                     default_index=run.default_index())
    assert run.best is not None
    curves = [plots.Curve(f"best config (trial {run.best.number})", colour,
                          list(run.best.user_attrs.get("history", [])),
                          _int_or_none(run.best.user_attrs.get("best_epoch")))]
    default = run.default_index()
    if default is not None and run.trials[default].number != run.best.number:
        trial = run.trials[default]
        curves.append(plots.Curve(f"default config (trial {trial.number})", plots.METHOD_COLOURS["default"],
                                  list(trial.user_attrs.get("history", [])),
                                  _int_or_none(trial.user_attrs.get("best_epoch"))))
    learning = plots.learning_curves(out_dir / "curves.png", title=f"{run.name}: learning curves",
                                     metric_label=run.metric, curves=curves)
    return [convergence, learning]


def _run_page(run: Run, row: Row, figures: list[Path], out_dir: Path) -> str:
    metric = run.metric
    decimals = 3 if abs(float(row["best_val_metric"] or 0)) < 10 else 2
    model = f"; LLM: {row['llm_model']}" if row["llm_model"] else ""
    lines = [f"# {run.name}", "",
             (f"{TABLE_NAMES.get(run.method, run.method)} on **{_md(run.target)}**, seed {row['seed']}, budget "
             f"{row['budget']} trials{model}. Status: {row['status']}"
             f"{': ' + str(row['fail_reason']) if row['fail_reason'] else ''}."), "",
             "| | |", "| --- | --- |"]
    if run.best is not None:
        lines += [(f"| best validation {metric} | {_fmt(row['best_val_metric'], decimals)} "
                  f"(trial {run.best.number}) |"),
                  f"| its test {metric} | {_fmt(row['test_metric'], decimals)} |"]
    lines += [f"| default config's validation {metric} | {_fmt(row['default_val_metric'], decimals)} |",
              (f"| trials | {row['trials_run']} of {row['budget']} "
              f"({sum(v is None for v in run.values())} failed) |"),
              f"| wall time | {_time_breakdown(row)} |"]
    if row["prompt_tokens"] is not None:
        lines.append(f"| LLM tokens | {row['prompt_tokens']:,} prompt, {row['completion_tokens'] or 0:,} "
                     f"completion |")
    lines += ["", ("The configuration was chosen by validation "
              f"{metric} only; its test {metric} is reported, never used to choose."), ""]
    links = [f"[{name}]({name})" for name in ("changelog.md", "trials.csv", "summary.json")
             if (out_dir / name).exists()]
    if links:
        lines += [f"More: {', '.join(links)}.", ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    return "\n".join(lines) + "\n"


def _time_breakdown(row: Row) -> str:
    parts = [f"training {_seconds(row['training_seconds'])}"]
    if row["llm_seconds"] is not None:
        parts.append(f"LLM {_seconds(row['llm_seconds'])}")
    if row["wall_seconds"] is None:
        return f"not recorded ({', '.join(parts)})"
    return f"{_seconds(row['wall_seconds'])} ({', '.join(parts)}, other {_seconds(row['other_seconds'])})"


# --- `lgt report PATH` ---------------------------------------------------------------------------------------------

def rebuild(path: Path, storage_url: str | None = None) -> Path:
    """Remake the report of a run folder or a bench folder from the storage; returns report.md's path.

    A bench folder holds bench.json (`bench_id`, `study_names`, the redacted
    storage); a run folder holds summary.json (`study_name`). The storage is
    `storage_url`, else the default one, since a recorded URL has lost its
    password.
    """
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; pass a run folder (results/<run-id>/) or a bench folder "
                        f"(results/bench/<bench-id>/)")
    url = storage_url or default_storage_url()
    if (path / "bench.json").is_file():
        bench = _read_json(path / "bench.json")
        names = bench.get("study_names")
        if not isinstance(names, list) or not names:
            raise UserError(f"{path / 'bench.json'} lists no study_names")
        title = str(bench.get("title") or f"lgt bench {bench.get('bench_id') or path.name}")
        machine = bench.get("machine")
        return write_bench_report(url, [str(n) for n in names], path, title=title,
                                  machine=str(machine) if machine else None)
    if (path / "summary.json").is_file():
        name = _read_json(path / "summary.json").get("study_name")
        if not name:
            raise UserError(f"{path / 'summary.json'} names no study_name")
        return write_run_report(url, str(name), path)
    raise UserError(f"{path} is neither a run folder (with summary.json) nor a bench folder (with bench.json)")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} does not read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} does not hold a JSON object")
    return data


# --- small helpers -------------------------------------------------------------------------------------------------

def _targets(runs: Iterable[Run]) -> list[str]:
    return list(dict.fromkeys(r.target for r in runs))


def _method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def metric_label(metric: Any) -> str:
    """The metric as people write it: MAE and RMSE in capitals, accuracy as is."""
    name = str(metric or "metric")
    return name.upper() if name.lower() in ("mae", "mse", "rmse") else name


def _trials(mean: float) -> str:
    return f"{mean:.0f} trial{'s' if mean != 1 else ''}" if mean.is_integer() else f"{mean:.1f} trials"


def _ylabel(metric: str, maximize: bool, so_far: bool = True) -> str:
    what = f"best validation {metric} so far" if so_far else f"validation {metric}"
    return f"{what}\n({'higher' if maximize else 'lower'} is better)"


def _slug(target: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", target).strip("_.") or "target"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _fmt(value: Any, decimals: int) -> str:
    return "n/a" if value is None else f"{float(value):.{decimals}f}"


def _seconds(value: Any) -> str:
    seconds = float(value)
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:,.0f} s"


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _int_or_none(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)
