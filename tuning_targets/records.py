"""What one trial produces, as plain data.

These records cross every boundary in the app (Optuna user attrs, the
change log, the LLM prompts), so they hold only JSON-friendly values and
convert to and from dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["complete", "failed"]


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialResult:
    """The outcome of training one config.

    `val_metric` is the validation metric of the weights that were kept (the
    best epoch by validation); `test_metric` is measured on those same
    weights and is for reporting only, never for choosing.
    """

    status: Status
    val_metric: float | None
    test_metric: float | None
    history: list[EpochRecord] = field(default_factory=list)
    fail_reason: str | None = None
    best_epoch: int | None = None
    seconds: float = 0.0
    n_params: int = 0
    extra_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["history"] = [e.to_dict() for e in self.history]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        fields = dict(data)
        fields["history"] = [EpochRecord(**e) for e in fields.get("history", [])]
        return cls(**fields)


class Reporter:
    """Receives progress while a trial trains.

    The base does nothing; the CLI's progress bars, pruners and the
    in-run LLM feedback subclass it. Raising from `on_epoch` stops the
    trial (that is how pruning works).
    """

    def on_start(self, total_epochs: int) -> None:
        pass

    def on_epoch(self, record: EpochRecord) -> None:
        pass

    def on_end(self, result: TrialResult) -> None:
        pass
