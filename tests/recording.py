"""A reporter that keeps every call a trial makes to it, for tests of trainers and loops."""

from __future__ import annotations

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
