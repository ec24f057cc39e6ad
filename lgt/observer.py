"""Progress of a run, as events; silent by default.

The app shell reports through this interface so the same run can be
driven from Python (silent), from the CLI (rich progress bars) or later
by a pruner, without the runner knowing which.
"""

from __future__ import annotations

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

    def on_message(self, text: str) -> None:
        pass

    def on_run_end(self, summary: dict[str, Any]) -> None:
        pass
