"""The bench's tables and its reading in plain sentences, from the summary rows.

Rows are methods and columns are targets; each cell sums up one method's
runs on one target over the seeds. Runs are compared on the test metric of
the configuration each chose by validation.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lgt import methods
from lgt.reporting.store import NOT_STARTED
from lgt.reporting.summary import Row
from lgt.reporting.text import fixed, line, md, metric_label, seconds, trials


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
        return [r for r in self.rows if r not in self.ok and r["status"] != NOT_STARTED]

    @property
    def not_started(self) -> list[Row]:
        """Runs of a bench still going that no process has started yet."""
        return [r for r in self.rows if r["status"] == NOT_STARTED]

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
            return md(self.target)  # every run failed before recording a metric: its direction is unknown too
        return f"{md(self.target)} ({self.metric} {'↑' if self.maximize else '↓'})"

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
        names = sorted(dict.fromkeys(r["method"] for r in mine), key=methods.rank)
        groups = [Group(m, [r for r in mine if r["method"] == m]) for m in names]
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
         "(mean over the runs that got there), wall time per run (mean), the share of that time spent training, "
         "in the LLM (agents' runs) and on the rest (sampling, storage, reports), and the epochs each run trained "
         "(by seed; A/B branches of in-run checks included, so equal epoch budgets show as equal numbers)."), "",
        *_cost_table(cols), "",
        *_paired_section(cols),
        *_positions_section(cols),
    ])


def _positions_section(cols: list[Column]) -> list[str]:
    """Where the Advisor's departures from TPE's pick were shown, by method over every target and seed.

    A model that chooses by place sends most of them to one position (in
    free mode, the candidate listed second); one that reads the candidates
    spreads them by what they hold. Empty without LGT runs that chose.
    """
    found: dict[str, dict[str, int]] = {}
    chance: dict[str, dict[str, float]] = {}
    for col in cols:
        for group in col.groups:
            for row in group.ok:
                for position, count in (row.get("departure_positions") or {}).items():
                    mine = found.setdefault(group.method, {})
                    mine[position] = mine.get(position, 0) + int(count)
                for position, expected in (row.get("departure_chance") or {}).items():
                    odds = chance.setdefault(group.method, {})
                    odds[position] = odds.get(position, 0.0) + float(expected)
    if not found:
        return []
    lines = ["## Where the Advisor's departures were shown", "",
             ("Each time the Advisor picked a candidate other than TPE's own (whether or not it then trained), the "
              "position that candidate was shown at, over every run of the method: a share far above the rest at "
              "one position is the model choosing by place. In free mode the list is in a fixed order (0 is TPE's "
              "pick, so departures are shown at 1 and later); in menu mode it is shuffled every round and the "
              "model's position prior is divided out, and the last column gives the shares expected if place "
              "played no part (rounds with fewer candidates have fewer places)."), "",
             "| method | departures | by position shown | if place played no part |", "| --- | ---: | --- | --- |"]
    for method, counts in found.items():
        total = sum(counts.values())
        shares = ", ".join(f"{p}: {n} ({n / total:.0%})" for p, n in sorted(counts.items(), key=lambda kv: int(kv[0])))
        odds = chance.get(method) or {}
        expected = ", ".join(f"{p}: {e / total:.0%}" for p, e in sorted(odds.items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {methods.get(method).label} | {total} | {shares} | {expected or '-'} |")
    return [*lines, ""]


def _paired_section(cols: list[Column]) -> list[str]:
    """Each method's test metric minus TPE's on the same target and seed, seed by seed.

    Means over three seeds hide whether a method wins on every seed or once
    by a lot; the runs of one seed share the splits and the first config,
    so their difference is the fair comparison. Empty without TPE runs.
    """
    if not any(g.method == PAIR_BASE and g.ok for col in cols for g in col.groups):
        return []
    return ["## Paired with TPE, seed by seed", "",
            ("Test metric of the chosen configuration minus TPE's on the same target and seed (positive: better "
             "than TPE where higher is better), each seed in order, then the mean difference and the seeds won, "
             "tied and lost."), "",
            *_method_table(cols, _paired_cell), ""]


PAIR_BASE = "tpe"


def _paired_cell(group: Group, col: Column) -> str:
    base = next((g for g in col.groups if g.method == PAIR_BASE), None)
    if group.method == PAIR_BASE or base is None:
        return ""
    theirs = {r["seed"]: float(r["test_metric"]) for r in base.ok if r["test_metric"] is not None}
    pairs = [(r["seed"], float(r["test_metric"]) - theirs[r["seed"]]) for r in group.ok
             if r["test_metric"] is not None and r["seed"] in theirs]
    if not pairs:
        return "no seed in common"
    sign = 1.0 if col.maximize else -1.0
    decimals = col.decimals()
    diffs = [d for _, d in sorted(pairs, key=lambda p: p[0])]
    won = sum(1 for d in diffs if sign * d > 0)
    lost = sum(1 for d in diffs if sign * d < 0)
    shown = ", ".join(f"{d:+.{decimals}f}" for d in diffs)
    return (f"{shown} (mean {statistics.fmean(diffs):+.{decimals}f}; "
            f"{won} won, {len(diffs) - won - lost} tied, {lost} lost)")


def _method_table(cols: list[Column], cell: Callable[[Group, Column], str]) -> list[str]:
    """Rows are methods, columns are targets; `cell` renders one method's runs on one target."""
    lines = _table_head(cols)
    for method in _methods(cols):
        cells = []
        for col in cols:
            group = next((g for g in col.groups if g.method == method), None)
            cells.append("" if group is None else cell(group, col))
        lines.append(_table_line([methods.label(method), *cells]))
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
    text = "n/a" if mean is None else fixed(mean, decimals) + ("" if std is None else f" ± {fixed(std, decimals)}")
    if mean is not None and mean == best_mean:
        text = f"**{text}**"
    notes = [f"val {fixed(group.mean('best_val_metric'), decimals)}"]
    if group.failed:
        notes.append(f"{len(group.failed)} of {len(group.rows)} runs failed")
    incomplete = [r for r in group.ok if r["status"] == "incomplete"]
    if incomplete:
        notes.append(f"{len(incomplete)} of {len(group.rows)} runs incomplete")
    if group.not_started:
        notes.append(f"{len(group.not_started)} of {len(group.rows)} runs not started yet")
    notes += _fallback_notes(group)
    return f"{text} ({'; '.join(notes)})"


def _fallback_notes(group: Group) -> list[str]:
    """An LGT group whose Advisor fell back to TPE: how often, and a mark when it was mostly TPE."""
    fell = sum(int(r.get("fallback_rounds") or 0) for r in group.ok)
    rounds = sum(int(r.get("rounds") or 0) for r in group.ok)
    if not fell:
        return []
    mark = "MOSTLY TPE FALLBACK: " if fell > rounds / 2 else ""
    return [f"{mark}{fell} of {rounds} rounds fell back to TPE"]


def _failed_cell(group: Group) -> str:
    if group.rows and len(group.not_started) == len(group.rows):
        return "not started yet"
    reasons = [r["fail_reason"] for r in group.rows if r["fail_reason"]]
    if not reasons:
        return "failed" if any(r["status"] == "failed" for r in group.rows) else "no trial completed"
    reason = line(reasons[0])
    return "failed: " + md(reason if len(reason) <= 80 else reason[:79] + "…")


def _cost_table(cols: list[Column]) -> list[str]:
    return _method_table(cols, lambda group, _: _cost_cell(group))


def _cost_cell(group: Group) -> str:
    if not group.ok:
        return "not started yet" if len(group.not_started) == len(group.rows) else "failed"
    reached = [int(r["trials_to_95"]) for r in group.ok if r["trials_to_95"] is not None]
    count = "never" if not reached else trials(statistics.fmean(reached))
    if reached and len(reached) < len(group.ok):
        count += f" ({len(group.ok) - len(reached)} of {len(group.ok)} never)"
    wall = group.wall()
    split = _time_split(group)
    epochs = [int(r["epochs_trained"]) for r in sorted(group.ok, key=_seed_order) if r["epochs_trained"] is not None]
    return (f"{count} · {'wall n/a' if wall is None else seconds(wall)}" + ("" if split is None else f" · {split}")
            + ("" if not epochs else f" · {', '.join(map(str, epochs))} epochs"))


def _time_split(group: Group) -> str | None:
    """What share of the runs' wall time was training, the LLM (agents' runs) and the rest, over the runs timed."""
    timed = [r for r in group.ok if r["wall_seconds"]]
    wall = sum(float(r["wall_seconds"]) for r in timed)
    if not wall:
        return None
    parts = {"training": sum(float(r["training_seconds"] or 0.0) for r in timed)}
    if any(r["llm_seconds"] is not None for r in timed):
        parts["LLM"] = sum(float(r["llm_seconds"] or 0.0) for r in timed)
    parts["other"] = sum(float(r["other_seconds"] or 0.0) for r in timed)
    return ", ".join(f"{name} {value / wall:.0%}" for name, value in parts.items())


def _seed_order(row: Row) -> tuple[bool, int]:
    seed = row.get("seed")
    return (not isinstance(seed, int), seed if isinstance(seed, int) else 0)


def _table_head(cols: list[Column]) -> list[str]:
    return [_table_line(["method", *(c.header for c in cols)]), _table_line(["---"] * (len(cols) + 1))]


def _table_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _methods(cols: list[Column]) -> list[str]:
    return sorted(dict.fromkeys(g.method for c in cols for g in c.groups), key=methods.rank)


def reading(cols: list[Column]) -> str:
    """Two or three sentences read off the numbers: who won where, by how much, at what cost."""
    sentences = [_target_sentence(c) for c in cols]
    sentences.append("Every run chose its configuration by the validation metric alone; the test figures are "
                     "those of the chosen configurations and played no part in choosing them.")
    return " ".join(sentences)


def _target_sentence(col: Column) -> str:
    ranked = col.ranked()
    if not ranked:
        return f"On {md(col.target)} no method produced a result."
    win, d = ranked[0], col.decimals()
    word = "higher" if col.maximize else "lower"
    win_mean = win.mean("test_metric") or 0.0
    runs = "one run" if len(win.ok) == 1 else f"mean of {len(win.ok)} runs"
    text = (f"On {md(col.target)}, {methods.prose(win.method)} scored best on test {col.metric} "
            f"({fixed(win_mean, d)}, {runs})")
    clauses = []
    if len(ranked) > 1:
        runner = ranked[1]
        clauses.append(_margin(win_mean, runner, f"the runner-up, {methods.prose(runner.method)}",
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
        return f"level with {name} ({fixed(other_mean, decimals)})"
    return f"{fixed(gap, decimals)} {word} than {name} ({fixed(other_mean, decimals)})"


def _cost_clause(win: Group, runner: Group) -> str:
    a, b = win.wall(), runner.wall()
    if a is None or b is None or b <= 0:
        return ""
    return (f", taking {a / b:.1f}× the wall time of {methods.prose(runner.method)} per run "
            f"({seconds(a)} against {seconds(b)})")
