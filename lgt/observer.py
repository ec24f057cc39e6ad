"""Progress of a run, as events; silent by default.

The app shell and the graph report through this interface so the same run
can be driven from Python (silent), from the CLI (progress bars and the
narration of `lgt.reporting.lines`) or a test, without the runner knowing
which. Events carry data, not sentences: whoever prints them words them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tuning_targets import Config, Reporter, TrialResult


class RunObserver:
    def on_run_start(self, run_id: str, budget: int, done: int, metric: str) -> None:
        pass

    def on_trial_start(self, number: int, ordinal: int, budget: int, config: Config) -> None:
        pass

    def epoch_reporter(self) -> Reporter:
        return Reporter()

    def on_trial_end(self, number: int, result: TrialResult) -> None:
        pass

    def on_proposal(self, round_number: int, budget: int, proposal: Mapping[str, Any]) -> None:
        """The config a round is about to train, with where it came from (an LGT run)."""

    def on_verdict(self, record: Mapping[str, Any]) -> None:
        """A finished LGT trial with the Evaluator's verdict."""

    def on_guidance(self, version: Mapping[str, Any]) -> None:
        """The Optimizer rewrote the Advisor's guidance."""

    def on_schedule_entry(self, entry: Mapping[str, Any]) -> None:
        """What the agents decided after an epoch of an `--adapt epoch` trial."""

    def on_message(self, text: str) -> None:
        pass

    def on_run_end(self, summary: dict[str, Any]) -> None:
        pass
