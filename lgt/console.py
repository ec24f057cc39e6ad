"""Terminal rendering: progress bars while a run trains, tables after.

Progress goes to stderr so stdout stays clean for tables and paths a user
may pipe.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lgt.observer import RunObserver
from lgt.reporting import lines
from lgt.reporting.text import one_line
from lgt.reporting.text import short as fmt
from tuning_targets import Config, EpochRecord, Reporter, TrialResult

# Piped output is read by tools and logs, not wrapped terminals: give tables room.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


class _EpochBar(Reporter):
    def __init__(self, progress: Progress, task_id: Any, metric: str) -> None:
        self.progress, self.task_id, self.metric = progress, task_id, metric

    def on_start(self, total_epochs: int) -> None:
        self.progress.reset(self.task_id, total=total_epochs, description="  epochs")

    def on_epoch(self, record: EpochRecord) -> None:
        self.progress.update(self.task_id, advance=1,
                             description=f"  epoch {record.epoch}: val {self.metric} {record.val_metric:.4f}")


class ProgressObserver(RunObserver):
    """A bar for trials and one for the epochs of the current trial."""

    def __init__(self) -> None:
        self.metric = "metric"
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err, transient=False,
                                 disable=not err.is_terminal and "pytest" in sys.modules)
        self.trials = self.progress.add_task("trials", total=1)
        self.epochs = self.progress.add_task("  epochs", total=1)

    def on_run_start(self, run_id: str, budget: int, done: int, metric: str) -> None:
        self.metric = metric
        err.print(f"run [bold]{run_id}[/]" + (f" (resuming: {done} of {budget} trials done)" if done else ""))
        self.progress.update(self.trials, total=budget, completed=done)
        self.progress.start()

    def on_trial_start(self, number: int, ordinal: int, budget: int, config: Config) -> None:
        self.progress.update(self.trials, description=f"trial {ordinal}/{budget}")

    def epoch_reporter(self) -> Reporter:
        return _EpochBar(self.progress, self.epochs, self.metric)

    def on_trial_end(self, number: int, result: TrialResult) -> None:
        self.progress.advance(self.trials)
        if result.ok:
            self.progress.console.print(f"trial {number}: val {self.metric} {fmt(result.val_metric)} "
                                        f"({result.seconds:.1f} s)")
        else:
            self.progress.console.print(f"trial {number}: [red]failed[/] - {escape(one_line(result.fail_reason))}",
                                        soft_wrap=True)

    def on_proposal(self, round_number: int, budget: int, proposal: Mapping[str, Any]) -> None:
        self.on_message(lines.proposal_line(round_number, budget, proposal))

    def on_verdict(self, record: Mapping[str, Any]) -> None:
        self.on_message(lines.verdict_line(record, self.metric))

    def on_guidance(self, version: Mapping[str, Any]) -> None:
        self.on_message(lines.guidance_line(version))

    def on_schedule_entry(self, entry: Mapping[str, Any]) -> None:
        self.on_message(lines.schedule_line(entry, self.metric))

    def on_message(self, text: str) -> None:
        # LLM text and "[bench]" tags are not rich markup; a long line (a CSV's path) is not wrapped into two
        self.progress.console.print(escape(one_line(text)), soft_wrap=True)

    def on_run_end(self, summary: dict[str, Any]) -> None:
        self.progress.stop()


def trials_table(rows: list[dict[str, Any]], metric: str, best: int | None) -> Table:
    table = Table(title="Trials", title_justify="left")
    for column in ("#", "source", f"val {metric}", "epochs", "seconds", "changed from default / note"):
        table.add_column(column)
    for row in rows:
        style = "bold green" if row["number"] == best else None
        note = escape(one_line(row["fail_reason"] or row.get("changes", "")))
        table.add_row(str(row["number"]), str(row["source"]), fmt(row["val_metric"]), str(row["epochs_run"]),
                      fmt(row["seconds"], 3), note, style=style)
    return table


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Best trial (chosen on validation)", title_justify="left", show_header=False)
    table.add_column("key")
    table.add_column("value")
    metric = summary["metric"]
    table.add_row("trial", fmt(summary["best_trial"]))
    table.add_row(f"validation {metric}", fmt(summary["best_val_metric"]))
    table.add_row(f"test {metric}", fmt(summary["test_metric"]))
    table.add_row(f"default config's val {metric}", fmt(summary["default_val_metric"]))
    for key, value in (summary.get("best_extra_metrics") or {}).items():
        table.add_row(key, fmt(value))
    table.add_row("trials", f"{summary['trials_run']} run, {summary['trials_failed']} failed")
    return table
