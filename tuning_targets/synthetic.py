"""A synthetic target whose trials take a fixed wall time and no CPU.

Scaling is about coordination, not arithmetic: with trials that sleep, N
workers on a 2-core machine should finish N times the trials per minute, and
anything less is overhead of ours or of the storage. The score is a smooth
function of the knobs with a known optimum, so samplers still have
something to find. `synthetic:SECONDS` sets each trial's duration.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from lgt.errors import UserError
from tuning_targets.base import Target
from tuning_targets.records import EpochRecord, Reporter, TrialResult
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, SearchSpace
from tuning_targets.trainer import TensorSplits

OPTIMUM = {"x": 0.7, "y": 0.3}
DEFAULT_SECONDS = 0.5


class SyntheticTarget(Target):
    name = "synthetic"
    task = "classification"
    description = "Synthetic: each trial sleeps a fixed time and scores a smooth function of the knobs"

    def __init__(self, *, seconds: float = DEFAULT_SECONDS, split_seed: int = 0) -> None:
        if not math.isfinite(seconds) or seconds < 0:
            raise UserError(f"synthetic:SECONDS needs a duration of 0 or more seconds, got {seconds}")
        self.seconds = seconds
        super().__init__(split_seed=split_seed)

    def build_space(self) -> SearchSpace:
        return SearchSpace([
            FloatKnob("x", "hyperparameters", "First coordinate; the score peaks at one value.", low=0.0, high=1.0,
                      dynamic=True),
            FloatKnob("y", "hyperparameters", "Second coordinate; the score peaks at one value.", low=0.0, high=1.0,
                      dynamic=True),
            CategoricalKnob("shape", "architecture", "A structural choice; 'wide' scores a little higher.",
                            choices=("narrow", "wide")),
            IntKnob("epochs", "training", "Epochs; the trial's time is split over them.", low=1, high=5),
        ])

    def default_values(self) -> dict[str, Any]:
        return {"x": 0.2, "y": 0.8, "shape": "narrow", "epochs": 2}

    def score(self, config: Config) -> float:
        distance = (float(config["x"]) - OPTIMUM["x"]) ** 2 + (float(config["y"]) - OPTIMUM["y"]) ** 2
        return round(0.9 * math.exp(-3.0 * distance) + (0.05 if config["shape"] == "wide" else 0.0), 6)

    def load_splits(self, config: Config) -> TensorSplits:
        empty = torch.zeros(0, 1)
        labels = torch.zeros(0, dtype=torch.long)
        return TensorSplits(empty, labels, empty, labels, empty, labels)

    def build_model(self, config: Config, data: TensorSplits) -> nn.Module:
        return nn.Identity()

    def data_profile(self) -> dict[str, Any]:
        return {"rows": {"train": 0, "val": 0, "test": 0}}

    def data_summary(self) -> str:
        return f"no data; each trial sleeps {self.seconds:g} s"

    def run(self, config: Config, reporter: Reporter | None = None, *, seed: int = 0,
            device: torch.device | None = None) -> TrialResult:
        """Sleep through the epochs; the curve rises towards the config's score."""
        config = self.space.validate(config, base=self.default_config, strict=True).config
        reporter = reporter or Reporter()
        epochs = int(config["epochs"])
        final = self.score(config)
        reporter.on_start(epochs)
        started = time.perf_counter()
        history = []
        for epoch in range(1, epochs + 1):
            time.sleep(self.seconds / epochs)
            value = round(final * (1 - 0.5 ** epoch) / (1 - 0.5 ** epochs), 6)
            record = EpochRecord(epoch, train_loss=1 - value, val_loss=1 - value, val_metric=value, lr=float(config["x"]),
                                 seconds=self.seconds / epochs)
            history.append(record)
            reporter.on_epoch(record)
        result = TrialResult("complete", val_metric=final, test_metric=round(final - 0.01, 6), history=history,
                             best_epoch=epochs, seconds=time.perf_counter() - started)
        reporter.on_end(result)
        return result


def parse_synthetic(name: str, *, split_seed: int = 0) -> SyntheticTarget:
    """`synthetic` or `synthetic:SECONDS`."""
    _, _, text = name.partition(":")
    try:
        seconds = float(text) if text else DEFAULT_SECONDS
    except ValueError:
        raise UserError(f"synthetic:SECONDS needs a number of seconds, got {text!r}") from None
    return SyntheticTarget(seconds=seconds, split_seed=split_seed)
