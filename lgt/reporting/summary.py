"""One run in numbers: the summary every view shares, and the per-trial rows.

`summarize` is the one place a run's outcome and cost are computed:
summary.json, the bench's summary.csv, the tables and the report pages all
read it. The test metric appears for the chosen (best-by-validation) trial
only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from lgt import methods
from lgt.direction import is_better
from lgt.reporting.store import Run
from lgt.reporting.text import as_float, as_int
from lgt.reporting.writing import write_whole, write_with
from lgt.studies import epochs_trained
from lgt.vocabulary import is_source

Row = dict[str, Any]

# summary.csv of a bench: one row per run, these columns in this order.
BENCH_COLUMNS = ("study_name", "bench_id", "target", "method", "seed", "budget", "epoch_budget", "trials_run",
                 "epochs_trained", "status", "fail_reason", "metric", "direction", "best_val_metric", "test_metric",
                 "default_val_metric", "trials_to_95", "trials_to_99", "wall_seconds", "training_seconds",
                 "llm_seconds", "other_seconds", "prompt_tokens", "completion_tokens", "llm_model", "rounds",
                 "llm_seconds_per_round", "fallback_rounds", "departed_rounds", "gated_rounds", "words_replaced",
                 "words")
TRIAL_COLUMNS = ("number", "method", "source", "state", "val_metric", "best_epoch", "epochs_run", "seconds",
                 "fail_reason")


def summarize(run: Run) -> Row:
    """The run's outcome and cost, read from its study alone."""
    best = run.best
    wall = as_float(run.attrs.get("wall_seconds"))
    training = sum(as_float(t.user_attrs.get("seconds")) or 0.0 for t in run.trials)
    llm = sum_attr(run.trials, "llm_seconds")
    default = run.default_index()
    return {
        "run_id": run.attrs.get("run_id", run.name),
        "study_name": run.name,
        "bench_id": run.attrs.get("bench_id"),
        "target": run.target,
        "method": run.method,
        "seed": run.attrs.get("seed"),
        "budget": run.attrs.get("trials"),
        "epoch_budget": run.attrs.get("epoch_budget"),
        "trials_run": len(run.trials),
        "trials_failed": sum(1 for t in run.trials if t.state != TrialState.COMPLETE),
        "epochs_trained": sum(epochs_trained(t) for t in run.trials),
        "status": status(run),
        "fail_reason": run.attrs.get("fail_reason") if run.failed else None,
        "metric": run.attrs.get("metric"),
        "direction": "maximize" if run.maximize else "minimize",
        "best_trial": None if best is None else best.number,
        "best_val_metric": None if best is None else best.value,
        "test_metric": None if best is None else best.user_attrs.get("test_metric"),
        "best_extra_metrics": {} if best is None else best.user_attrs.get("extra_metrics", {}),
        "best_config": None if best is None else best.user_attrs.get("config"),
        "default_val_metric": None if default is None else run.values()[default],
        "wall_seconds": None if wall is None else round(wall, 3),
        "training_seconds": round(training, 3),
        "llm_seconds": None if llm is None else round(llm, 3),
        "other_seconds": None if wall is None else round(max(0.0, wall - training - (llm or 0.0)), 3),
        "prompt_tokens": as_int(sum_attr(run.trials, "llm_prompt_tokens")),
        "completion_tokens": as_int(sum_attr(run.trials, "llm_completion_tokens")),
        "llm_model": run.attrs.get("llm_model"),
        **(agents_summary(run, llm) if methods.is_agents(run.method) else {}),
    }


def agents_summary(run: Run, llm: float | None) -> Row:
    """What an LGT run's agents did: LLM time per round, choices, fallbacks, and words replaced."""
    rounds = len(run.trials)
    attrs = [t.user_attrs for t in run.trials]
    verdicts = [a.get("verdict") or {} for a in attrs] + [v for k, v in run.attrs.items()
                                                          if k.startswith("verdict_round_") and isinstance(v, dict)]
    return {
        "rounds": rounds,
        "llm_seconds_per_round": None if llm is None or not rounds else round(llm / rounds, 2),
        "llm_prompt_eval_seconds": sum_attr(run.trials, "llm_prompt_eval_seconds"),
        "llm_generation_seconds": sum_attr(run.trials, "llm_generation_seconds"),
        "fallback_rounds": sum(is_source(a, "fallback") for a in attrs),
        "departed_rounds": sum(bool(a.get("departed")) for a in attrs),
        "gated_rounds": sum(bool(a.get("gated")) for a in attrs),
        "choice_rounds": sum(a.get("departed") is not None for a in attrs),
        "words_replaced": sum(len(a.get("replaced") or []) for a in attrs)
        + sum(len(v.get("replaced") or []) for v in verdicts),
        "guidance_refused": sum(k.startswith("guidance_refused_") for k in run.attrs),
        "words": run.attrs.get("words") or "free",
        "departure_positions": departure_positions(attrs),
        "departure_chance": departure_chance(attrs),
    }


def departure_positions(attrs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Where the candidates the Advisor picked over TPE's candidate 0 were shown: position -> count.

    Position bias is the model choosing by place, not content: in free mode
    the candidates are listed in their order, so the position is the pick;
    in menu mode the order is shuffled per round and stored with the pick.
    Picks that the gate or the margin overruled count too: they are the
    model's choices.
    """
    counts: dict[str, int] = {}
    for a in attrs:
        pick = a.get("pick")
        if pick is None or pick == 0:
            continue
        choice = (a.get("evidence") or {}).get("choice") or {}
        position = choice.get("position", pick)
        counts[str(position)] = counts.get(str(position), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


def departure_chance(attrs: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Where the same departures would have been shown if place played no part: position -> expected count.

    A menu-mode list is shuffled, so a departing candidate lands at each of
    the k positions of its round with chance 1/k; rounds of two candidates
    put half of theirs at position 1, so an even spread is not the baseline.
    Free-mode picks (no stored order) are left out: their order is fixed.
    """
    chance: dict[str, float] = {}
    for a in attrs:
        shown = ((a.get("evidence") or {}).get("choice") or {}).get("shown")
        if a.get("pick") in (None, 0) or not shown:
            continue
        for position in range(len(shown)):
            chance[str(position)] = chance.get(str(position), 0.0) + 1 / len(shown)
    return dict(sorted(chance.items(), key=lambda kv: int(kv[0])))


def status(run: Run) -> str:
    """The recorded status; a run that never recorded one is complete once its budget is spent."""
    if run.attrs.get("status"):
        return str(run.attrs["status"])
    epoch_budget = as_int(run.attrs.get("epoch_budget"))
    if epoch_budget and sum(epochs_trained(t) for t in run.trials) >= epoch_budget:
        return "complete"
    return "complete" if len(run.trials) >= (as_int(run.attrs.get("trials")) or 1) else "incomplete"


def sum_attr(trials: Iterable[FrozenTrial], key: str) -> float | None:
    """Sum of a numeric trial attr; None when no trial carries it (not measured is not zero)."""
    present = [v for v in (as_float(t.user_attrs.get(key)) for t in trials) if v is not None]
    return sum(present) if present else None


def write_summary_json(run: Run, storage: str, path: Path) -> Row:
    """summary.json; `storage` is written as given, so pass it redacted."""
    summary = summarize(run) | {"storage": storage}
    write_whole(path, json.dumps(summary, indent=2) + "\n")
    return summary


# --- trials ------------------------------------------------------------------------------------------------------

def trial_rows(run: Run) -> list[Row]:
    """One row per trial that spent budget, with its config, as trials.csv and the terminal table show it."""
    rows = []
    for t in run.trials:
        attrs = t.user_attrs
        row = {
            "number": t.number, "method": attrs.get("method"), "source": attrs.get("source"),
            "state": "complete" if t.state == TrialState.COMPLETE else attrs.get("status", t.state.name.lower()),
            "val_metric": t.value, "best_epoch": attrs.get("best_epoch"),
            "epochs_run": len(attrs.get("history", [])), "seconds": round(float(attrs.get("seconds") or 0), 3),
            "fail_reason": attrs.get("fail_reason") or "",
        }
        row |= dict(attrs.get("config", {}))
        rows.append(row)
    return rows


def write_trials_csv(run: Run, path: Path) -> Path:
    knobs = list(run.attrs.get("default_config", {}))
    return _write_csv(path, [*TRIAL_COLUMNS, *knobs], trial_rows(run))


def _write_csv(path: Path, columns: list[str], rows: list[Row]) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return write_with(path, write)


# --- a bench: one row per run -------------------------------------------------------------------------------------

def bench_rows(runs: list[Run]) -> list[Row]:
    """One summary row per run, with trials to 95% / 99% of the best any run found on its target.

    "Best" is the best validation metric any run in this set found on the
    same target, so the figure compares methods on how fast they get close
    to what was reachable, not to each run's own best.
    """
    bests = target_bests(runs)
    targets = list(dict.fromkeys(r.target for r in runs))
    ordered = sorted(runs, key=lambda r: (targets.index(r.target), methods.rank(r.method),
                                          as_int(r.attrs.get("seed")) or 0, r.name))
    rows = []
    for run in ordered:
        best = bests.get(run.target)
        rows.append(summarize(run) | {"trials_to_95": trials_to(run, best, 0.95),
                                      "trials_to_99": trials_to(run, best, 0.99)})
    return rows


def write_summary_csv(rows: list[Row], path: Path) -> Path:
    return _write_csv(path, list(BENCH_COLUMNS), rows)


def target_bests(runs: Iterable[Run]) -> dict[str, float]:
    """The best validation metric any successful run found, per target."""
    bests: dict[str, float] = {}
    for run in runs:
        if run.failed or run.best is None or run.best.value is None:
            continue
        value = float(run.best.value)
        if is_better(value, bests.get(run.target), run.direction):
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


def trials_to(run: Run, target_best: float | None, fraction: float) -> int | None:
    """The 1-based trial count at which the run's best so far first reached the threshold."""
    if target_best is None:
        return None
    goal = threshold(target_best, fraction, run.maximize)
    for i, value in enumerate(run.best_so_far(), start=1):
        if not math.isnan(value) and not is_better(goal, value, run.direction):  # at least as good as the goal
            return i
    return None
