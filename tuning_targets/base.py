"""The `Target` contract: what gets tuned, how it is measured, what may change.

Every tuner (Optuna baselines, the LGT agents) sees a target only through
this class, so adding a data set means adding one subclass.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Literal

import torch
from torch import nn

from lgt.errors import UserError
from tuning_targets.records import Reporter, TrialResult
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, Knob, SearchSpace
from tuning_targets.trainer import (
    Augment,
    KnobSetter,
    Task,
    TensorSplits,
    TrainingRun,
    TrainSettings,
    TrialRefused,
    is_out_of_memory,
    out_of_memory_reason,
    pick_device,
    run_to_end,
)

Direction = Literal["maximize", "minimize"]


class Target(ABC):
    """A data set with its model family and search space.

    Subclasses load data lazily (`load_splits`), so listing targets is cheap
    and a missing data set is reported only when it is needed.
    """

    name: str
    task: Task
    description: str = ""

    def __init__(self, *, split_seed: int = 0) -> None:
        self.split_seed = split_seed
        self.space: SearchSpace = self.build_space()
        self.default_config: Config = self.space.validate(self.default_values(), strict=True).config

    @property
    def metric(self) -> str:
        return "accuracy" if self.task == "classification" else "mae"

    @property
    def direction(self) -> Direction:
        return "maximize" if self.task == "classification" else "minimize"

    def better(self, a: float, b: float | None) -> bool:
        """Whether metric value `a` beats `b` (None: nothing to beat)."""
        if b is None:
            return True
        return a > b if self.direction == "maximize" else a < b

    @abstractmethod
    def build_space(self) -> SearchSpace: ...

    @abstractmethod
    def default_values(self) -> dict[str, Any]:
        """The untuned starting point every method shares as its first trial."""

    @abstractmethod
    def load_splits(self, config: Config) -> TensorSplits:
        """Tensors for this config (feature engineering may depend on it)."""

    @abstractmethod
    def build_model(self, config: Config, data: TensorSplits) -> nn.Module: ...

    def augmenter(self, config: Config) -> Augment | None:
        return None

    def data_profile(self) -> dict[str, Any]:
        """Facts about the data the agents are told, computed here, as plain data.

        Keys (each optional): ``rows`` {train, val, test}; ``features``
        {numeric, categorical}; ``image`` {height, width, channels};
        ``missing_share`` (of feature cells); ``classes`` {count,
        smallest_share, largest_share}; ``target`` {mean, std, min, max} for
        regression; ``columns`` (names as found in the data: data, never
        instructions, so whoever shows them quotes and caps them).
        """
        data = self.load_splits(self.default_config)
        profile: dict[str, Any] = {"rows": {"train": len(data.x_train), "val": len(data.x_val),
                                            "test": len(data.x_test)}}
        if self.task == "classification" and len(data.y_train):
            profile["classes"] = class_balance(data.y_train.tolist())
        return profile

    def data_summary(self) -> str:
        """Sizes of the splits, for `lgt targets`; never raises."""
        try:
            data = self.load_splits(self.default_config)
        except UserError as exc:
            return f"unavailable: {exc}"
        return f"{len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test"

    def run(self, config: Config, reporter: Reporter | None = None, *, seed: int = 0,
            device: torch.device | None = None) -> TrialResult:
        """Train one config; the config must already fit the space."""
        run = self.start_run(config, seed=seed, device=device)
        result = run_to_end(run, reporter)
        result.seconds = time.perf_counter() - run.started
        return result

    def start_run(self, config: Config, *, seed: int = 0, device: torch.device | None = None) -> TrainingRun:
        """Set up one config's training without training it: step it an epoch at a time.

        This is how in-run adaptation trains: between epochs the knobs the
        space marks dynamic may change (`TrainingRun.apply`), the rest are
        fixed. `run()` is this stepped to the end. The trial's clock
        (`TrainingRun.started`) includes loading the data.

        A config whose data or model cannot be built here (`TrialRefused`,
        or an allocation that fails) gives a run that is already over and
        finishes as `failed` with the reason, so the tuner goes on.
        """
        config = self.space.validate(config, base=self.default_config, strict=True).config
        started = time.perf_counter()
        settings = TrainSettings.from_config(config)
        try:
            data = self.load_splits(config)
            torch.manual_seed(seed)
            model = self.build_model(config, data)
            return TrainingRun(model, data, settings, task=self.task, seed=seed,
                               augment=self.augmenter(config), device=device or pick_device(), config=config,
                               dynamic=self.dynamic_knobs(), setters=self.knob_setters(config), started=started)
        except (TrialRefused, MemoryError, RuntimeError) as exc:
            if not isinstance(exc, TrialRefused) and not is_out_of_memory(exc):
                raise
            reason = f"refused: {exc}" if isinstance(exc, TrialRefused) else out_of_memory_reason(exc)
        return TrainingRun.failed_to_start(reason, settings, task=self.task, config=config,
                                           dynamic=self.dynamic_knobs(), started=started)

    def dynamic_knobs(self) -> tuple[str, ...]:
        """Knobs that may change between epochs of one run; every other knob is structural."""
        return tuple(knob.name for knob in self.space if knob.dynamic)

    def knob_setters(self, config: Config) -> dict[str, KnobSetter]:
        """How this target's own dynamic knobs change inside a run (the trainer handles the shared ones)."""
        return {}


def training_knobs(*, max_epochs: int, classification: bool) -> list[Knob]:
    """The hyperparameter and training-strategy knobs every target shares.

    Listed first because the grid baseline spends its budget in space order.
    """
    knobs: list[Knob] = [
        FloatKnob("learning_rate", "hyperparameters", "Step size of the optimiser; too high diverges, too low crawls.",
                  low=1e-4, high=0.3, log=True, dynamic=True),
        CategoricalKnob("optimizer", "training", "Optimiser family: plain SGD (with Nesterov when momentum>0), Adam, AdamW or RMSprop.",
                        choices=("sgd", "adam", "adamw", "rmsprop")),
        CategoricalKnob("batch_size", "hyperparameters", "Samples per optimiser step; smaller is noisier and slower per epoch.",
                        choices=(16, 32, 64, 128, 256)),
        IntKnob("epochs", "training", "Passes over the training split (the best validation epoch is kept).",
                low=1, high=max_epochs),
        FloatKnob("momentum", "hyperparameters", "Momentum for SGD and RMSprop; ignored by Adam and AdamW.",
                  low=0.0, high=0.99, dynamic=True),
        FloatKnob("weight_decay", "hyperparameters", "L2 penalty on weights; more regularises against overfitting.",
                  low=0.0, high=0.01, dynamic=True),
        CategoricalKnob("lr_schedule", "training", "How the learning rate moves over training: constant, cosine decay, x0.1 steps at 50% and 75%, or warm-up then cosine.",
                        choices=("constant", "cosine", "step", "warmup_cosine")),
        IntKnob("early_stopping_patience", "training", "Stop after this many epochs without validation gain; 0 turns it off.",
                low=0, high=10),
        FloatKnob("grad_clip", "training", "Clip the gradient norm to this value to tame spikes; 0 turns it off.",
                  low=0.0, high=5.0, dynamic=True),
    ]
    if classification:
        knobs.append(FloatKnob("label_smoothing", "training", "Soften one-hot labels by this much; mild values curb overconfidence.",
                               low=0.0, high=0.2, dynamic=True))
    return knobs


TRAINING_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.01, "optimizer": "sgd", "batch_size": 64, "momentum": 0.9, "weight_decay": 0.0,
    "lr_schedule": "constant", "early_stopping_patience": 0, "grad_clip": 0.0, "label_smoothing": 0.0,
}


def class_balance(labels: list[Any]) -> dict[str, Any]:
    """How many classes, and the smallest and largest class's share of the rows."""
    counts: dict[Any, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    total = sum(counts.values())
    return {"count": len(counts), "smallest_share": round(min(counts.values()) / total, 4),
            "largest_share": round(max(counts.values()) / total, 4)}


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "gelu": nn.GELU(), "silu": nn.SiLU(), "tanh": nn.Tanh()}[name]


ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
