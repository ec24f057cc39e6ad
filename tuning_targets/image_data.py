"""Loading image data sets into uint8 arrays, from disk only unless allowed.

Each loader returns `(x_train, y_train, x_test, y_test)` with images as
uint8 arrays of shape (N, C, H, W). The validation split is carved out of
the training images later, so the official test split stays untouched.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from lgt.errors import UserError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def default_data_dir() -> Path:
    return Path(os.environ.get("LGT_DATA_DIR", "data"))


def offline() -> bool:
    """Tests and air-gapped machines set LGT_OFFLINE=1 so nothing tries the network."""
    return os.environ.get("LGT_OFFLINE", "") not in ("", "0", "false")


def load_digits_arrays() -> Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    return x_train, y_train, x_test, y_test


def load_mnist_arrays(data_dir: Path) -> Arrays:
    raw = data_dir / "MNIST" / "raw"
    if not all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in MNIST_FILES):
        _download("MNIST", data_dir, raw, MNIST_FILES)
    from torchvision.datasets import MNIST

    try:
        train = MNIST(str(data_dir), train=True, download=False)
        test = MNIST(str(data_dir), train=False, download=False)
    except (RuntimeError, OSError, ValueError) as exc:
        raise UserError(f"MNIST files under {raw} could not be read: {exc}") from None
    return (train.data.numpy()[:, None], train.targets.numpy(), test.data.numpy()[:, None], test.targets.numpy())


def load_cifar10_arrays(data_dir: Path) -> Arrays:
    """Read CIFAR-10's pickled batches directly.

    torchvision's CIFAR10 class refuses files whose MD5 differs from the
    official release; reading the format ourselves lets any file in the
    real layout (a subset, a test fixture) load.
    """
    folder = data_dir / CIFAR_DIR
    if not all((folder / f).exists() for f in CIFAR_FILES):
        _download("CIFAR-10", data_dir, folder, CIFAR_FILES)
    parts = []
    for name in CIFAR_FILES:
        try:
            with open(folder / name, "rb") as fh:
                batch = pickle.load(fh, encoding="latin1")
            x = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(batch["labels"], dtype=np.int64)
        except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
            raise UserError(f"CIFAR-10 file {folder / name} is not a valid batch: {exc}") from None
        parts.append((x, y))
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    return x_train, y_train, parts[-1][0], parts[-1][1]


def _download(name: str, data_dir: Path, expected: Path, files: tuple[str, ...]) -> None:
    where = f"{expected} ({', '.join(files)})"
    if offline():
        raise UserError(f"{name} not found: put its files in {where}, or unset LGT_OFFLINE to download")
    from torchvision.datasets import CIFAR10, MNIST

    cls = MNIST if name == "MNIST" else CIFAR10
    try:
        cls(str(data_dir), train=True, download=True)
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        raise UserError(f"{name} not found and the download failed ({type(exc).__name__}): "
                        f"put its files in {where}") from None
