"""Loading image data sets into uint8 arrays, from disk only unless allowed.

Each loader returns `(x_train, y_train, x_test, y_test)` with images as
uint8 arrays of shape (N, C, H, W). The validation split is carved out of
the training images later, so the official test split stays untouched.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np

from lgt import environment
from lgt.errors import UserError

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def default_data_dir() -> Path:
    return Path(environment.DATA_DIR.text() or "data")


def offline() -> bool:
    """Tests and air-gapped machines set LGT_OFFLINE=1 so nothing tries the network."""
    return environment.OFFLINE.flag()


def load_digits_arrays() -> Arrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    return x_train, y_train, x_test, y_test


def load_mnist_arrays(data_dir: Path) -> Arrays:
    """Read MNIST's IDX files (plain or gzipped) from `data_dir/MNIST/raw`.

    Read directly rather than through torchvision, which ignores gzipped
    files unless it may download, and whose errors talk about `download=True`.
    """
    raw = data_dir / "MNIST" / "raw"
    if not all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in MNIST_FILES):
        _download("MNIST", data_dir, raw, MNIST_FILES)
    x_train, y_train, x_test, y_test = (_read_idx(raw, f) for f in MNIST_FILES)
    for images, labels, kind in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserError(f"MNIST files under {raw}: {kind} images {images.shape} and labels {labels.shape} "
                            "do not match")
    return x_train[:, None], y_train.astype(np.int64), x_test[:, None], y_test.astype(np.int64)


def _read_idx(folder: Path, name: str) -> np.ndarray:
    """One IDX file: two zero bytes, type code 0x08 (uint8), rank, big-endian int32 sizes, data."""
    path = folder / name if (folder / name).exists() else folder / f"{name}.gz"
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"MNIST file {path} could not be read: {exc}") from None
    header = 4 + 4 * raw[3] if len(raw) >= 4 else 0
    if not header or raw[:3] != b"\x00\x00\x08" or len(raw) < header:
        raise UserError(f"MNIST file {path} is not an IDX file of unsigned bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    if len(raw) - header != int(np.prod(shape)):
        raise UserError(f"MNIST file {path} holds {len(raw) - header} bytes of data; its header says {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


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
            # The official files come from Python 2 (str keys under latin1); files
            # re-pickled by Python 3 keep bytes keys (b"data"). Accept both.
            batch = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in batch.items()}
            x = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(batch["labels"], dtype=np.int64).reshape(-1)
            if len(x) != len(y):
                raise ValueError(f"{len(x)} images but {len(y)} labels")
        except (OSError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError, EOFError) as exc:
            raise UserError(f"CIFAR-10 file {folder / name} is not a valid batch: "
                            f"{type(exc).__name__}: {exc}") from None
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
