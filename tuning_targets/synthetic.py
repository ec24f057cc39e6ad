"""A synthetic target whose trials take a fixed wall time and no CPU.

Scaling is about coordination, not arithmetic: with trials that sleep, N
workers on a 2-core machine should finish N times the trials per minute, and
anything less is overhead of ours or of the storage. The score is a smooth
function of the knobs with a known optimum, so samplers still have
something to find. `synthetic:SECONDS` sets each trial's duration.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

from lgt.direction import best_of
from lgt.errors import UserError
from tuning_targets.base import Target
from tuning_targets.records import EpochRecord, TrialResult
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, SearchSpace
from tuning_targets.stepping import ModelRun, RefusedChange, StepPlan, structural_reason

if TYPE_CHECKING:
    import torch

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

    def data_profile(self) -> dict[str, Any]:
        return {"rows": {"train": 0, "val": 0, "test": 0}}

    def data_summary(self) -> str:
        return f"no data; each trial sleeps {self.seconds:g} s"

    def start_run(self, config: Config, *, seed: int = 0, device: torch.device | None = None) -> ModelRun:
        """Sleep through the epochs; the curve rises towards the config's score."""
        config = self.space.validate(config, base=self.default_config, strict=True).config
        return SyntheticRun(self, config, time.perf_counter())


class SyntheticRun(ModelRun):
    """A run whose epochs sleep and whose curve is known: x and y may move between epochs."""

    def __init__(self, target: SyntheticTarget, config: Config, started: float) -> None:
        self.target, self.started, self.config = target, started, dict(config)
        self.dynamic = frozenset(target.dynamic_knobs(config))
        self.history, self.epoch, self.first_loss, self.fail_reason = [], 0, 1.0, None
        self._finished = False

    @property
    def planned_epochs(self) -> int:
        return int(self.config["epochs"])

    @property
    def settings(self) -> StepPlan:
        return StepPlan(self.planned_epochs)

    @property
    def done(self) -> bool:
        return self._finished or self.epoch >= self.planned_epochs

    def _value(self, epoch: int) -> float:
        final, epochs = self.target.score(self.config), self.planned_epochs
        return round(final * (1 - 0.5 ** epoch) / (1 - 0.5 ** epochs), 6)

    def step(self) -> EpochRecord | None:
        if self.done:
            raise RuntimeError("this run is over; restore a snapshot or start a new run")
        seconds = self.target.seconds / self.planned_epochs
        time.sleep(seconds)
        self.epoch += 1
        value = self._value(self.epoch)
        record = EpochRecord(self.epoch, train_loss=1 - value, val_loss=1 - value, val_metric=value,
                             lr=float(self.config["x"]), seconds=seconds)
        self.history.append(record)
        return record

    def finish(self) -> TrialResult:
        self._finished = True
        if not self.history:
            return TrialResult("failed", None, None, [], fail_reason="no epoch was trained",
                               seconds=time.perf_counter() - self.started)
        best = best_of(self.history, self.target.direction, lambda r: r.val_metric)
        assert best is not None, "a synthetic epoch always scores"
        return TrialResult("complete", val_metric=best.val_metric, test_metric=round(best.val_metric - 0.01, 6),
                           history=list(self.history), best_epoch=best.epoch,
                           seconds=time.perf_counter() - self.started)

    def snapshot(self) -> Any:
        return copy.deepcopy((self.config, self.history, self.epoch))

    def restore(self, snap: Any) -> None:
        self.config, self.history, self.epoch = copy.deepcopy(snap)
        self._finished = False

    def refusals(self, changes: dict[str, Any]) -> dict[str, str]:
        if self._finished:
            return {knob: "the run is finished" for knob in changes}
        return {knob: structural_reason(knob) if knob in self.config else f"unknown knob {knob}"
                for knob in changes if knob not in self.dynamic}

    def apply(self, changes: dict[str, Any]) -> list[str]:
        refused = self.refusals(changes)
        if refused:
            raise RefusedChange(refused)
        self.config |= changes
        return []


def parse_synthetic(name: str, *, split_seed: int = 0) -> SyntheticTarget:
    """`synthetic` or `synthetic:SECONDS`."""
    _, _, text = name.partition(":")
    try:
        seconds = float(text) if text else DEFAULT_SECONDS
    except ValueError:
        raise UserError(f"synthetic:SECONDS needs a number of seconds, got {text!r}") from None
    return SyntheticTarget(seconds=seconds, split_seed=split_seed)
