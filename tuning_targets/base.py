"""The `Target` contract: what gets tuned, how it is measured, what may change.

Every tuner (Optuna baselines, the LGT agents) sees a target only through
this class, so adding a data set means adding one subclass. A target trains
a config and reports its curve: `start_run` gives a `ModelRun` stepped an
epoch (torch), a boosting stage or one fit at a time (scikit-learn), and
`run` steps it to the end. Nothing here assumes torch; the torch targets
share `tuning_targets.torch_target.TorchTarget`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from lgt.direction import Direction
from tuning_targets.metrics import Task, check_metric, metric_direction
from tuning_targets.records import Reporter, TrialResult
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, Knob, SearchSpace
from tuning_targets.stepping import ModelRun, run_to_end

if TYPE_CHECKING:
    import torch


class Target(ABC):
    """A data set with its model family (or families) and search space.

    Subclasses load data lazily, so listing targets is cheap and a missing
    data set is reported only when it is needed. `metric` chooses what is
    tuned (`tuning_targets.metrics`; default accuracy or MAE by task).
    """

    name: str
    task: Task
    description: str = ""

    def __init__(self, *, split_seed: int = 0, metric: str | None = None) -> None:
        self.split_seed = split_seed
        self._metric = check_metric(self.task, metric)
        self.space: SearchSpace = self.build_space()
        self.default_config: Config = self.space.validate(self.default_values(), strict=True).config

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def direction(self) -> Direction:
        return metric_direction(self._metric)

    @abstractmethod
    def build_space(self) -> SearchSpace: ...

    @abstractmethod
    def default_values(self) -> dict[str, Any]:
        """The untuned starting point every method shares as its first trial."""

    @abstractmethod
    def start_run(self, config: Config, *, seed: int = 0, device: torch.device | None = None) -> ModelRun:
        """Set up one config's training without training it: step it to train.

        This is how in-run adaptation trains: between steps the knobs the
        space marks dynamic (and active for this config) may change
        (`ModelRun.apply`), the rest are fixed. `run()` is this stepped to
        the end. The trial's clock (`ModelRun.started`) includes loading the
        data. A config whose data or model cannot be built here gives a run
        that is already over (`stepping.FailedRun`) and finishes as `failed`
        with the reason, so the tuner goes on.
        """

    def run(self, config: Config, reporter: Reporter | None = None, *, seed: int = 0,
            device: torch.device | None = None, max_steps: float = math.inf) -> TrialResult:
        """Train one config, at most `max_steps` steps (epochs); the config must already fit the space."""
        run = self.start_run(config, seed=seed, device=device)
        result = run_to_end(run, reporter, max_steps)
        result.seconds = time.perf_counter() - run.started
        return result

    def load_splits(self, config: Config) -> object:
        """The data `config` trains on, in the target's own form (tensors for the torch targets), or None.

        Callers that only want bad data to fail early should call `prepare`.
        """
        self.prepare(config)
        return None

    def prepare(self, config: Config) -> None:
        """Read and build the data `config` trains on now, so a problem shows before any tuning.

        Raises UserError for data that is missing or unusable, and
        `TrialRefused` or MemoryError for data too big for this machine.
        Targets without data have nothing to do.
        """

    def planned_steps(self, config: Config) -> int:
        """Steps a run of `config` trains unless it stops early (its epochs for a torch model)."""
        return int(config.get("epochs", 1))

    def max_steps(self) -> int:
        """The most steps any config of the space may train: the resource Hyperband divides."""
        knob = self.space.knobs.get("epochs")
        return int(getattr(knob, "high", 0) or self.default_config.get("epochs", 3))

    def data_profile(self) -> dict[str, Any]:
        """Facts about the data the agents are told, computed here, as plain data.

        Keys (each optional): ``rows`` {train, val, test}; ``features``
        {numeric, categorical}; ``image`` {height, width, channels};
        ``missing_share`` (of feature cells); ``classes`` {count,
        smallest_share, largest_share}; ``target`` {mean, std, min, max} for
        regression; ``columns`` (names as found in the data: data, never
        instructions, so whoever shows them quotes and caps them).
        """
        return {}

    def data_summary(self) -> str:
        """Sizes of the splits, for `lgt targets`; never raises."""
        return ""

    def dynamic_knobs(self, config: Config | None = None) -> tuple[str, ...]:
        """Knobs that may change between steps of a run of `config` (default: the default config).

        A knob is dynamic when the space marks it so and it is active in the
        config: a hist_gb run's learning rate may move, an MLP's may, but
        neither may move the other's.
        """
        config = self.default_config if config is None else config
        return tuple(knob.name for knob in self.space if knob.dynamic and self.space.is_active(knob.name, config))


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


ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
