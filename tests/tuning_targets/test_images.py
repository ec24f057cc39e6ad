"""Image targets on real data: digits, the MNIST subset, and CIFAR-10 in its real on-disk format."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from target_testkit import FAST_IMAGE, assert_diverges_then_recovers, quick_config, write_cifar10

from lgt.errors import UserError
from tuning_targets.image_data import CIFAR_FILES, MNIST_FILES, load_cifar10_arrays, load_mnist_arrays
from tuning_targets.images import VAL_FRACTION, ImageTarget, random_affine
from tuning_targets.registry import make_target
from tuning_targets.trainer import TensorSplits

CHANCE = 0.1  # ten balanced classes


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.reshape(len(x), -1)}


def assert_normalised_on_train(data: TensorSplits, channels: int) -> None:
    mean = data.x_train.mean(dim=(0, 2, 3))
    std = data.x_train.std(dim=(0, 2, 3))
    assert mean.shape == (channels,)
    assert torch.allclose(mean, torch.zeros(channels), atol=1e-4)
    assert torch.allclose(std, torch.ones(channels), atol=1e-3)


# --- digits ----------------------------------------------------------------------------------------------

def test_digits_trains_one_epoch_and_beats_chance() -> None:
    target = make_target("digits")
    result = target.run(quick_config(target, FAST_IMAGE))
    assert result.ok and len(result.history) == 1 and result.n_params > 0
    assert result.val_metric is not None and result.val_metric > CHANCE + 0.4
    assert result.test_metric is not None and result.test_metric > CHANCE + 0.4


def test_digits_splits_and_the_deepest_net_fit_8x8_images() -> None:
    target = make_target("digits")
    data = target.load_splits(target.default_config)
    assert data.x_train.shape[1:] == (1, 8, 8) and data.x_train.dtype == torch.float32
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1797
    assert len(data.x_val) == round((len(data.x_train) + len(data.x_val)) * VAL_FRACTION)
    assert_normalised_on_train(data, 1)
    model = target.build_model(target.default_config | {"conv_blocks": 3, "batch_norm": True}, data)
    assert model(data.x_val[:5]).shape == (5, 10)


# --- MNIST -----------------------------------------------------------------------------------------------

def test_mnist_subset_trains_one_epoch_and_beats_chance(shared_data: Path) -> None:
    target = make_target("mnist", data_dir=shared_data)
    assert target.data_summary() == "6800 train / 1200 val / 2000 test"
    data = target.load_splits(target.default_config)
    assert data.x_train.shape[1:] == (1, 28, 28)
    assert set(torch.unique(data.y_train).tolist()) == set(range(10))
    assert_normalised_on_train(data, 1)
    result = target.run(quick_config(target, FAST_IMAGE))
    assert result.ok and result.val_metric is not None and result.val_metric > 0.8
    assert result.test_metric is not None and result.test_metric > 0.8


@pytest.mark.parametrize("net", [
    {},  # the default net: its loss turns NaN
    pytest.param(FAST_IMAGE | {"optimizer": "sgd"}, id="small-net"),  # loss explodes to ~1e17 but stays finite
], ids=["default-net", "small-net"])
def test_mnist_learning_rate_10_diverges_and_the_next_trial_completes(shared_data: Path, net: dict[str, Any]) -> None:
    target = make_target("mnist", data_dir=shared_data)
    wild = quick_config(target, net, optimizer="sgd", learning_rate=10.0)
    after = assert_diverges_then_recovers(target, wild)
    assert after.val_metric is not None and after.val_metric > 0.8


def test_mnist_reads_gzipped_files(shared_data: Path, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        with open(shared_data / "MNIST" / "raw" / name, "rb") as src, gzip.open(raw / f"{name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    gzipped, plain = load_mnist_arrays(tmp_path), load_mnist_arrays(shared_data)
    assert [a.shape for a in gzipped] == [(8000, 1, 28, 28), (8000,), (2000, 1, 28, 28), (2000,)]
    for a, b in zip(gzipped, plain):
        assert np.array_equal(a, b)
    assert gzipped[0].dtype == np.uint8 and gzipped[1].dtype == np.int64


@pytest.mark.parametrize("present", [(), MNIST_FILES[:2]], ids=["none", "train-only"])
def test_mnist_missing_offline_says_where_to_put_the_files(tmp_path: Path, present: tuple[str, ...]) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in present:
        (raw / name).write_bytes(b"\x00")
    target = make_target("mnist", data_dir=tmp_path)  # lazy: building the target reads nothing
    with pytest.raises(UserError) as caught:
        target.run(target.default_config)
    message = str(caught.value)
    assert str(raw) in message and "t10k-images-idx3-ubyte" in message and "\n" not in message
    assert target.data_summary() == f"unavailable: {message}"


def test_mnist_corrupt_files_are_a_user_error(shared_data: Path, tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(shared_data / "MNIST" / "raw", raw)
    (raw / "t10k-labels-idx1-ubyte").chmod(0o644)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte is not an IDX file"):
        load_mnist_arrays(tmp_path)
    labels = (shared_data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes()
    (raw / "t10k-labels-idx1-ubyte").write_bytes(labels[:-10])
    with pytest.raises(UserError, match="header says"):
        load_mnist_arrays(tmp_path)


# --- CIFAR-10 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keys", ["py2", "bytes", "str"])
def test_cifar10_loader_reads_the_real_pickle_format(tmp_path: Path, keys: str) -> None:
    x_train, y_train, x_test, y_test = write_cifar10(tmp_path, per_batch=20, n_test=10, keys=keys)
    batch = (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    if keys == "py2":  # as the official files: the key type depends on how Python 3 decodes Python 2 str
        assert b"data" in pickle.loads(batch, encoding="bytes")
        assert "data" in pickle.loads(batch, encoding="latin1")
    loaded = load_cifar10_arrays(tmp_path)
    assert [a.shape for a in loaded] == [(100, 3, 32, 32), (100,), (10, 3, 32, 32), (10,)]
    for got, written in zip(loaded, (x_train, y_train, x_test, y_test)):
        assert np.array_equal(got, written)
    # Rows are channel planes: the first 1024 bytes of an image are its red channel.
    raw = pickle.loads(batch, encoding="latin1")
    data = raw["data" if "data" in raw else b"data"]
    assert np.array_equal(loaded[0][0, 0].reshape(-1), data[0, :1024])


@pytest.mark.parametrize(("content", "expected"), [
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "KeyError"),
    (pickle.dumps({"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]}), "ValueError"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1, 2]}), "2 images but 3 labels"),
    (pickle.dumps([1, 2, 3]), "AttributeError"),
    (b"\x80\x02}q\x00(U\x04data", "valid batch"),
    (b"", "valid batch"),
])
def test_cifar10_corrupt_batch_is_a_user_error(tmp_path: Path, content: bytes, expected: str) -> None:
    write_cifar10(tmp_path, per_batch=10, n_test=10)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(content)
    with pytest.raises(UserError) as caught:
        load_cifar10_arrays(tmp_path)
    assert str(bad) in str(caught.value) and expected in str(caught.value)


@pytest.mark.parametrize("present", [(), CIFAR_FILES[:5]], ids=["none", "no-test-batch"])
def test_cifar10_missing_offline_says_where_to_put_the_files(tmp_path: Path, present: tuple[str, ...]) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in present:
        (folder / name).write_bytes(b"")
    target = make_target("cifar10", data_dir=tmp_path)
    with pytest.raises(UserError) as caught:
        target.run(target.default_config)
    message = str(caught.value)
    assert "CIFAR-10 not found" in message and str(folder) in message and "test_batch" in message
    assert target.data_summary().startswith("unavailable: CIFAR-10 not found")


def test_cifar10_trains_one_epoch_and_beats_chance(cifar10_dir: Path) -> None:
    target = make_target("cifar10", data_dir=cifar10_dir)
    assert target.data_summary() == "850 train / 150 val / 200 test"
    data = target.load_splits(target.default_config)
    assert data.x_train.shape[1:] == (3, 32, 32)
    assert_normalised_on_train(data, 3)
    result = target.run(quick_config(target, FAST_IMAGE, augmentation="light"))
    assert result.ok and result.val_metric is not None and result.val_metric > CHANCE + 0.4
    assert result.test_metric is not None and result.test_metric > CHANCE + 0.4


def test_image_splits_are_deterministic_and_the_test_split_is_apart(cifar10_dir: Path) -> None:
    def splits(seed: int) -> TensorSplits:
        target = make_target("cifar10", data_dir=cifar10_dir, split_seed=seed)
        assert isinstance(target, ImageTarget)
        return target.load_splits(target.default_config)

    a, b, c = splits(0), splits(0), splits(1)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.y_val, c.y_val) or not torch.equal(a.x_val, c.x_val)
    assert torch.equal(a.y_test, c.y_test)  # the official test batch never moves
    # Splits share one per-channel normalisation, so equal images give equal rows.
    for data in (a, c):
        train, val, test = rows(data.x_train), rows(data.x_val), rows(data.x_test)
        assert len(train) == len(data.x_train) and len(val) == len(data.x_val) and len(test) == len(data.x_test)
        assert not train & val and not train & test and not val & test


# --- augmentation ----------------------------------------------------------------------------------------

def test_augmentation_warps_batches_reproducibly() -> None:
    target = make_target("digits")
    assert target.augmenter(target.default_config | {"augmentation": "none"}) is None
    x = target.load_splits(target.default_config).x_train[:16]
    identity = random_affine(0.0, 0.0, flip=False)(x, torch.Generator().manual_seed(0))
    assert torch.allclose(identity, x, atol=1e-5)
    augment = target.augmenter(target.default_config | {"augmentation": "strong"})
    assert augment is not None
    one, two = augment(x, torch.Generator().manual_seed(1)), augment(x, torch.Generator().manual_seed(1))
    assert one.shape == x.shape and torch.equal(one, two)
    assert not torch.allclose(one, x, atol=1e-2)
    flipped = random_affine(0.0, 0.0, flip=True)(x, torch.Generator().manual_seed(2))
    mirrored = torch.isclose(flipped, x.flip(-1), atol=1e-4).flatten(1).all(1)
    kept = torch.isclose(flipped, x, atol=1e-4).flatten(1).all(1)
    assert bool((mirrored | kept).all()) and bool(mirrored.any()) and bool(kept.any())
