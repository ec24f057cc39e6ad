"""Helpers for the tuning-target tests: small real data sets written on the fly, quick configs.

A plain module rather than conftest.py, so tests can import from it by name.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from recording import Recorder

from lgt.errors import UserError
from tuning_targets.base import Target
from tuning_targets.records import TrialResult
from tuning_targets.space import Config
from tuning_targets.trainer import TrainSettings, train

CIFAR_LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# One colour per class: what makes the synthetic CIFAR-10 learnable in one epoch.
CIFAR_PALETTE = np.array([[220, 40, 40], [40, 220, 40], [40, 40, 220], [220, 220, 40], [220, 40, 220],
                          [40, 220, 220], [130, 130, 130], [250, 140, 20], [20, 90, 160], [140, 60, 20]])


def quick_config(target: Target, preset: dict[str, Any] | None = None, **changes: Any) -> Config:
    """The target's default config, one epoch long, with `preset` and then `changes` applied."""
    return target.default_config | {"epochs": 1} | (preset or {}) | changes


# Settings that learn something in a single short epoch on every small set used here.
FAST_TABULAR: dict[str, Any] = {"optimizer": "adam", "learning_rate": 0.03, "batch_size": 16}
FAST_IMAGE: dict[str, Any] = {"optimizer": "adam", "learning_rate": 0.003, "batch_size": 32, "conv_channels": 8,
                              "conv_blocks": 1, "hidden_units": 32}


_PurePythonPickler: Any = pickle._Pickler


class _Py2Pickler(_PurePythonPickler):  # type: ignore[misc]
    """Pickles the way Python 2's cPickle wrote the official CIFAR-10 files.

    Python 2 `str` (here: bytes and ASCII text) is written with the STRING
    opcodes, which Python 3 decodes with `pickle.load(..., encoding=...)`:
    `'data'` under latin1, `b'data'` under bytes. Numpy arrays point at
    `numpy.core.multiarray._reconstruct`, as old files do.
    """

    dispatch = _PurePythonPickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_ascii_str(self, obj: str) -> None:
        self.save_py2_str(obj.encode("ascii"))

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_ascii_str


def _dump(obj: dict[Any, Any], path: Path, keys: str) -> None:
    """Write `obj` (str keys) in one of three real-world pickle flavours."""
    if keys == "py2":
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump({k.encode(): v for k, v in obj.items()})
        path.write_bytes(buf.getvalue())
    elif keys == "bytes":
        path.write_bytes(pickle.dumps({k.encode(): v for k, v in obj.items()}))
    else:
        path.write_bytes(pickle.dumps(obj))


def write_cifar10(root: Path, *, per_batch: int = 200, n_test: int = 200, keys: str = "py2",
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Write a small learnable set in CIFAR-10's on-disk layout under `root/cifar-10-batches-py`.

    Each class has its own colour plus a class-dependent stripe and strong
    pixel noise, so every image is distinct. Returns the images as
    (N, 3, 32, 32) uint8 arrays with their labels: train (all five batches)
    then test.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def images(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(n) % 10)
        x = CIFAR_PALETTE[labels][:, :, None, None] + rng.normal(0, 45, size=(n, 3, 32, 32))
        for i, label in enumerate(labels):
            x[i, :, 3 * label:3 * label + 3, :] += 60
        return np.clip(x, 0, 255).astype(np.uint8), labels

    xs, ys = [], []
    for b in range(1, 6):
        x, y = images(per_batch)
        _dump({"batch_label": f"training batch {b} of 5", "labels": [int(v) for v in y],
               "data": x.reshape(len(x), 3072), "filenames": [f"img_{b}_{i}.png" for i in range(len(x))]},
              folder / f"data_batch_{b}", keys)
        xs.append(x)
        ys.append(y)
    x_test, y_test = images(n_test)
    _dump({"batch_label": "testing batch 1 of 1", "labels": [int(v) for v in y_test],
           "data": x_test.reshape(len(x_test), 3072), "filenames": [f"test_{i}.png" for i in range(n_test)]},
          folder / "test_batch", keys)
    _dump({"num_cases_per_batch": per_batch, "label_names": CIFAR_LABEL_NAMES, "num_vis": 3072},
          folder / "batches.meta", keys)
    return np.concatenate(xs), np.concatenate(ys), x_test, y_test


def messy_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A CSV-like frame: an id column, gaps, a text category and a three-class text target."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, n)
    city = rng.choice(["north", "south", "east", "west"], n)
    income = rng.normal(50_000, 12_000, n)
    score = (age - 49) / 18 + np.select([city == "north", city == "south"], [1.5, -1.5], 0.0)
    score += rng.normal(0, 0.3, n)
    plan = np.where(score > 0.6, "pro", np.where(score < -0.6, "basic", "plus"))
    frame = pd.DataFrame({"customer_id": rng.permutation(n) + 10_000, "age": age.round(1), "city": city,
                          "income": income.round(2), "plan": plan})
    frame.loc[rng.random(n) < 0.12, "age"] = np.nan
    frame.loc[rng.random(n) < 0.08, "city"] = np.nan
    return frame




def assert_diverges_then_recovers(target: Target, wild: dict[str, Any]) -> TrialResult:
    """Train `wild` (whose learning rate the space would refuse), then a sane config on the same target.

    Returns the sane trial's result.
    """
    with pytest.raises(UserError, match="learning_rate"):
        target.run(wild)
    data = target.load_splits(wild)
    reporter = Recorder()
    failed = train(target.build_model(wild, data), data, TrainSettings.from_config(wild), task=target.task,
                   reporter=reporter, device=torch.device("cpu"))
    assert failed.status == "failed" and not failed.ok, failed.history
    assert failed.fail_reason is not None and "diverged" in failed.fail_reason
    assert failed.val_metric is None and failed.test_metric is None
    assert reporter.ended == [failed]

    fast = FAST_IMAGE if target.name in ("digits", "mnist", "cifar10") else FAST_TABULAR
    after = target.run(quick_config(target, fast))
    assert after.ok and after.val_metric is not None and math.isfinite(after.val_metric)
    assert after.history and all(math.isfinite(r.train_loss) for r in after.history)
    return after
