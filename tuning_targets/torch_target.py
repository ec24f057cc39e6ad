"""Targets whose model is a torch network trained by the one trainer (`trainer.TrainingRun`).

The image targets' CNN and the tabular targets' MLP share this: data as
tensors (`load_splits`), a model built per config (`build_model`), optional
batch augmentation and target-specific dynamic knobs.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import Any

import torch
from torch import nn

from lgt.errors import UserError
from tuning_targets.base import Target, class_balance
from tuning_targets.space import Config
from tuning_targets.stepping import FailedRun, ModelRun, TrialRefused
from tuning_targets.trainer import (
    Augment,
    KnobSetter,
    TensorSplits,
    TrainingRun,
    TrainSettings,
    is_out_of_memory,
    out_of_memory_reason,
    pick_device,
)


class TorchTarget(Target):
    """A target trained as a torch network, an epoch per step."""

    @abstractmethod
    def load_splits(self, config: Config) -> TensorSplits:
        """Tensors for this config (feature engineering may depend on it)."""

    @abstractmethod
    def build_model(self, config: Config, data: TensorSplits) -> nn.Module: ...

    def augmenter(self, config: Config) -> Augment | None:
        return None

    def knob_setters(self, config: Config) -> dict[str, KnobSetter]:
        """How this target's own dynamic knobs change inside a run (the trainer handles the shared ones)."""
        return {}

    def prepare(self, config: Config) -> None:
        self.load_splits(config)

    def data_profile(self) -> dict[str, Any]:
        data = self.load_splits(self.default_config)
        profile: dict[str, Any] = {"rows": {"train": len(data.x_train), "val": len(data.x_val),
                                            "test": len(data.x_test)}}
        if self.task == "classification" and len(data.y_train):
            profile["classes"] = class_balance(data.y_train.tolist())
        return profile

    def data_summary(self) -> str:
        try:
            data = self.load_splits(self.default_config)
        except UserError as exc:
            return f"unavailable: {exc}"
        return f"{len(data.x_train)} train / {len(data.x_val)} val / {len(data.x_test)} test"

    def start_run(self, config: Config, *, seed: int = 0, device: torch.device | None = None) -> ModelRun:
        """A `TrainingRun` of this config, or a `FailedRun` when its data or model cannot be built.

        `TrialRefused` (known too big up front) and an allocation that fails
        while building give a run that is over at once with the reason.
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
                               dynamic=self.dynamic_knobs(config), setters=self.knob_setters(config),
                               started=started, metric=self.metric)
        except (TrialRefused, MemoryError, RuntimeError) as exc:
            if not isinstance(exc, TrialRefused) and not is_out_of_memory(exc):
                raise
            reason = f"refused: {exc}" if isinstance(exc, TrialRefused) else out_of_memory_reason(exc)
        return FailedRun(reason, config=config, planned=settings.epochs, dynamic=self.dynamic_knobs(config),
                         started=started)


def activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "gelu": nn.GELU(), "silu": nn.SiLU(), "tanh": nn.Tanh()}[name]
