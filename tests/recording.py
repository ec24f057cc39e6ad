"""Test doubles for what a run reports: a reporter that keeps every call, and an observer that stands in for a kill."""

from __future__ import annotations

from lgt.observer import RunObserver
from tuning_targets.records import EpochRecord, Reporter, TrialResult


class Recorder(Reporter):
    """Keeps every call a trial makes to its reporter."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.epochs: list[EpochRecord] = []
        self.ended: list[TrialResult] = []

    def on_start(self, total_epochs: int) -> None:
        self.started.append(total_epochs)

    def on_epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record)

    def on_end(self, result: TrialResult) -> None:
        self.ended.append(result)


class CrashAfter(RunObserver):
    """Stands in for a kill: raises inside the train node after `n` trainings."""

    def __init__(self, n: int) -> None:
        self.left = n

    def on_trial_end(self, number: int, result: TrialResult) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
