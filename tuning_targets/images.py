"""Image classification targets (digits, MNIST, CIFAR-10) and their CNN.

Images are held as one normalised float tensor per split; augmentation is a
batched random affine warp on the device, so it costs one kernel per batch
instead of a Python call per image.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tuning_targets.base import ACTIVATIONS, TRAINING_DEFAULTS, training_knobs
from tuning_targets.image_data import (
    Arrays,
    default_data_dir,
    load_cifar10_arrays,
    load_digits_arrays,
    load_mnist_arrays,
)
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, SearchSpace
from tuning_targets.torch_target import TorchTarget, activation
from tuning_targets.trainer import Augment, KnobSetter, TensorSplits, TrainingRun

# strength -> (max shift as a fraction of the image, max rotation in degrees)
AUGMENT_LEVELS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.0), "light": (0.06, 5.0), "medium": (0.1, 10.0), "strong": (0.15, 15.0)}

VAL_FRACTION = 0.15


class ConvNet(nn.Module):
    """`blocks` x [conv3x3 (+BN) + act + maxpool], then one hidden dense layer."""

    def __init__(self, in_channels: int, size: int, n_classes: int, config: Config) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, width = in_channels, int(config["conv_channels"])
        for _ in range(int(config["conv_blocks"])):
            layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not config["batch_norm"]))
            if config["batch_norm"]:
                layers.append(nn.BatchNorm2d(width))
            layers.append(activation(str(config["activation"])))
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels, width = width, width * 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(float(config["dropout"])),
            nn.Linear(channels * size * size, int(config["hidden_units"])),
            activation(str(config["activation"])),
            nn.Dropout(float(config["dropout"])),
            nn.Linear(int(config["hidden_units"]), n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def random_affine(shift: float, degrees: float, flip: bool) -> Augment:
    """A batched augmentation: per-image random shift, rotation and optional flip."""

    def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n = x.shape[0]
        u = torch.rand(n, 4, device=x.device, generator=gen) * 2 - 1
        angle = u[:, 0] * degrees * torch.pi / 180
        cos, sin = angle.cos(), angle.sin()
        sign = torch.where(u[:, 3] > 0, -1.0, 1.0) if flip else torch.ones_like(cos)
        theta = torch.stack([
            torch.stack([cos * sign, -sin, u[:, 1] * shift * 2], 1),
            torch.stack([sin * sign, cos, u[:, 2] * shift * 2], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, padding_mode="zeros" if not flip else "reflection", align_corners=False)

    return augment


class ImageTarget(TorchTarget):
    """An image data set read as uint8 arrays and normalised per channel."""

    task = "classification"
    n_classes = 10
    max_epochs = 30
    flips = False

    def __init__(self, *, split_seed: int = 0, data_dir: Path | None = None, metric: str | None = None) -> None:
        self.data_dir = data_dir or default_data_dir()
        super().__init__(split_seed=split_seed, metric=metric)

    @abstractmethod
    def read_arrays(self) -> Arrays: ...

    def build_space(self) -> SearchSpace:
        return SearchSpace(training_knobs(max_epochs=self.max_epochs, classification=True) + [
            CategoricalKnob("conv_channels", "architecture", "Filters in the first conv block; each later block doubles them.",
                            choices=(8, 16, 32, 64)),
            CategoricalKnob("conv_blocks", "architecture", "Conv blocks (conv, norm, activation, 2x2 max-pool) before the dense head.",
                            choices=(1, 2, 3)),
            CategoricalKnob("hidden_units", "architecture", "Width of the dense hidden layer of the head.",
                            choices=(32, 64, 128, 256, 512)),
            CategoricalKnob("activation", "architecture", "Non-linearity used throughout the network.", choices=ACTIVATIONS),
            CategoricalKnob("batch_norm", "architecture", "Batch normalisation after each conv; steadies and speeds training.",
                            choices=(False, True)),
            FloatKnob("dropout", "architecture", "Dropout before and after the hidden dense layer; regularises the head.",
                      low=0.0, high=0.6, dynamic=True),
            CategoricalKnob("augmentation", "features", "Random shift/rotation" + (" and flip" if self.flips else "")
                            + " of training images, by strength.", choices=tuple(AUGMENT_LEVELS), ordered=True,
                            dynamic=True),
        ])

    def default_values(self) -> dict[str, Any]:
        return TRAINING_DEFAULTS | {"epochs": 3, "conv_channels": 16, "conv_blocks": 2, "hidden_units": 64,
                                    "activation": "relu", "batch_norm": False, "dropout": 0.0, "augmentation": "none"}

    @cached_property
    def _splits(self) -> TensorSplits:
        x_train, y_train, x_test, y_test = self.read_arrays()
        rng = np.random.default_rng(self.split_seed)
        order = rng.permutation(len(x_train))
        n_val = max(1, round(len(x_train) * VAL_FRACTION))
        val_idx, train_idx = order[:n_val], order[n_val:]
        train_f = torch.from_numpy(x_train[train_idx]).float().div_(255)
        mean = train_f.mean(dim=(0, 2, 3), keepdim=True)
        std = train_f.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)

        def norm(x: np.ndarray) -> torch.Tensor:
            return (torch.from_numpy(np.ascontiguousarray(x)).float().div_(255) - mean) / std

        def labels(y: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(y, dtype=np.int64))

        return TensorSplits((train_f - mean) / std, labels(y_train[train_idx]), norm(x_train[val_idx]),
                            labels(y_train[val_idx]), norm(x_test), labels(y_test))

    def load_splits(self, config: Config) -> TensorSplits:
        return self._splits

    def data_profile(self) -> dict[str, Any]:
        profile = super().data_profile()
        _, channels, height, width = self._splits.x_train.shape
        features = channels * height * width
        return profile | {"image": {"height": height, "width": width, "channels": channels},
                          "features": {"numeric": features, "categorical": 0}, "missing_share": 0.0}

    def build_model(self, config: Config, data: TensorSplits) -> nn.Module:
        _, channels, size, _ = data.x_train.shape
        return ConvNet(channels, size, self.n_classes, config)

    def augmenter(self, config: Config) -> Augment | None:
        shift, degrees = AUGMENT_LEVELS[str(config["augmentation"])]
        if shift == 0 and degrees == 0:
            return None
        return random_affine(shift, degrees, self.flips)

    def knob_setters(self, config: Config) -> dict[str, KnobSetter]:
        """Augmentation strength may change between epochs: the next batches use the new warp."""

        def set_augmentation(run: TrainingRun, value: Any) -> None:
            run.set_augment(self.augmenter({**config, "augmentation": value}))

        return {"augmentation": set_augmentation}


class DigitsTarget(ImageTarget):
    name = "digits"
    description = "scikit-learn's 8x8 handwritten digits (1,797 images; ships offline)"
    max_epochs = 40

    def read_arrays(self) -> Arrays:
        return load_digits_arrays()


class MnistTarget(ImageTarget):
    name = "mnist"
    description = "MNIST 28x28 handwritten digits from --data-dir (torchvision layout)"

    def read_arrays(self) -> Arrays:
        return load_mnist_arrays(self.data_dir)


class Cifar10Target(ImageTarget):
    name = "cifar10"
    description = "CIFAR-10 32x32 colour images from --data-dir (python pickle batches)"
    flips = True

    def read_arrays(self) -> Arrays:
        return load_cifar10_arrays(self.data_dir)
