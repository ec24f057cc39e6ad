"""Target names users type, mapped to targets, and the Target contract every one of them keeps."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lgt.errors import UserError
from tuning_targets import TARGET_NAMES, Target, make_target
from tuning_targets.images import Cifar10Target, DigitsTarget, MnistTarget
from tuning_targets.tabular import TabularTarget

BUILT_IN = [n.split(":")[0] for n in TARGET_NAMES if n != "csv:PATH"]  # synthetic:SECONDS -> synthetic


def test_every_name_is_listed() -> None:
    assert set(TARGET_NAMES) == {"digits", "mnist", "cifar10", "iris", "wine", "breast_cancer", "diabetes", "csv:PATH",
                                 "synthetic:SECONDS"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_built_in_targets_keep_the_contract(name: str, tmp_path: Path) -> None:
    target = make_target(name, data_dir=tmp_path, split_seed=3)  # image data is read lazily, so tmp_path is fine
    assert isinstance(target, Target) and target.name == name and target.description
    assert target.split_seed == 3
    if target.task == "classification":
        assert (target.metric, target.direction) == ("accuracy", "maximize")
    else:
        assert (target.metric, target.direction) == ("mae", "minimize")
    assert target.space.validate(target.default_config, strict=True).config == target.default_config
    assert target.default_config["epochs"] <= target.space.knobs["epochs"].high  # type: ignore[attr-defined]
    json.dumps(target.default_config)
    json.dumps(target.space.describe())


def test_names_map_to_their_classes(tmp_path: Path) -> None:
    assert isinstance(make_target("digits"), DigitsTarget)
    assert isinstance(make_target("mnist", data_dir=tmp_path), MnistTarget)
    cifar = make_target("cifar10", data_dir=tmp_path)
    assert isinstance(cifar, Cifar10Target) and cifar.data_dir == tmp_path
    assert make_target("diabetes").task == "regression"
    assert isinstance(make_target("iris"), TabularTarget)


def test_data_summaries_add_up() -> None:
    digits = make_target("digits").data_summary()
    counts = [int(part.split()[0]) for part in digits.split(" / ")]
    assert sum(counts) == 1797
    assert make_target("iris").data_summary() == "90 train / 30 val / 30 test, 4 columns, 3 classes"


def test_unknown_target_lists_the_choices() -> None:
    with pytest.raises(UserError) as caught:
        make_target("imagenet")
    message = str(caught.value)
    assert "unknown target 'imagenet'" in message and "digits" in message and "csv:PATH" in message


@pytest.mark.parametrize("name", ["digits", "mnist", "cifar10"])
def test_image_targets_refuse_regression(name: str) -> None:
    with pytest.raises(UserError, match="image classification"):
        make_target(name, task="regression")
    assert make_target(name, task="classification").task == "classification"


def test_csv_target_needs_a_target_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"x": [0.5, 1.5] * 10, "y": [0, 1] * 10}).to_csv(path, index=False)
    with pytest.raises(UserError, match="--target-column"):
        make_target(f"csv:{path}")
    target = make_target(f"csv:{path}", target_column="y", split_seed=4)
    assert target.name == f"csv:{path}" and target.split_seed == 4 and str(path) in target.description


def test_the_split_seed_reaches_the_splits() -> None:
    a, b, c = make_target("wine", split_seed=1), make_target("wine", split_seed=1), make_target("wine", split_seed=2)
    config = a.default_config
    assert a.load_splits(config).y_val.tolist() == b.load_splits(config).y_val.tolist()
    assert a.load_splits(config).x_val.tolist() != c.load_splits(config).x_val.tolist()


def test_synthetic_target_sleeps_its_duration_and_peaks_at_its_optimum() -> None:
    target = make_target("synthetic:0.2")
    result = target.run({**target.default_config, "epochs": 2})
    assert result.ok and len(result.history) == 2 and result.seconds >= 0.2
    assert result.history[-1].val_metric == result.val_metric
    best = target.run({"x": 0.7, "y": 0.3, "shape": "wide", "epochs": 1})
    assert best.val_metric is not None and result.val_metric is not None and best.val_metric > result.val_metric
    with pytest.raises(UserError, match="synthetic:SECONDS"):
        make_target("synthetic:soon")
