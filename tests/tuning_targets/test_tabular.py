"""Tabular targets: scikit-learn's sets and messy CSVs through the training-split-only pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from target_testkit import FAST_TABULAR, messy_frame, quick_config

from lgt.errors import UserError
from tuning_targets.registry import make_target
from tuning_targets.tabular import TabularTarget, build_feature_pipeline, infer_task
from tuning_targets.trainer import TensorSplits


def majority_share(y: torch.Tensor) -> float:
    return float(torch.bincount(y).max()) / len(y)


def split_rows(target: TabularTarget) -> list[np.ndarray]:
    """Row indices of train, val and test in the cleaned frame.

    White-box on purpose: checking that preprocessing saw the training rows
    only needs to know which rows those were.
    """
    return target._prepare()[2]


def tabular(name: str, **options: Any) -> TabularTarget:
    target = make_target(name, **options)
    assert isinstance(target, TabularTarget)
    return target


def frame_target(frame: pd.DataFrame, target_column: str = "plan", split_seed: int = 0) -> TabularTarget:
    return TabularTarget("frame", lambda: frame.copy(), target_column, split_seed=split_seed)


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return f"csv:{path}"


# --- built-in sets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer"])
def test_builtin_classification_trains_one_epoch_and_beats_chance(name: str) -> None:
    target = tabular(name)
    assert target.task == "classification" and target.metric == "accuracy"
    data = target.load_splits(target.default_config)
    result = target.run(quick_config(target, FAST_TABULAR))
    assert result.ok and len(result.history) == 1
    assert result.val_metric is not None and result.val_metric > majority_share(data.y_val) + 0.1
    assert result.test_metric is not None and result.test_metric > majority_share(data.y_test) + 0.1


def test_diabetes_regression_beats_the_training_mean_and_reports_r2() -> None:
    target = tabular("diabetes")
    assert target.task == "regression" and target.metric == "mae" and target.direction == "minimize"
    data = target.load_splits(target.default_config)
    # Targets are standardised on the training split; metrics come back in the original units.
    raw = pd.Series(target._read()["target"].to_numpy())
    assert data.y_scale == pytest.approx(raw.iloc[split_rows(target)[0]].std(ddof=0), rel=1e-5)
    assert float(data.y_train.mean()) == pytest.approx(0.0, abs=1e-5)
    mean_guess_mae = float((data.y_val - data.y_train.mean()).abs().mean()) * data.y_scale
    result = target.run(quick_config(target, FAST_TABULAR))
    assert result.ok and result.val_metric is not None and result.val_metric < mean_guess_mae
    assert result.test_metric is not None and result.test_metric > 0
    r2 = result.extra_metrics["val_r2"]
    assert 0.0 < r2 <= 1.0
    assert {"test_r2", "val_rmse", "test_rmse"} <= set(result.extra_metrics)
    assert result.extra_metrics["val_rmse"] >= result.val_metric  # RMSE >= MAE, same units


# --- a messy CSV -----------------------------------------------------------------------------------------

def test_messy_csv_trains_one_epoch_and_beats_chance(messy_csv: Path) -> None:
    target = tabular(f"csv:{messy_csv}", target_column="plan")
    assert target.task == "classification"  # a text target
    assert target.data_summary() == "180 train / 60 val / 60 test, 3 columns, 3 classes"
    data = target.load_splits(target.default_config)
    cities = messy_frame()["city"].fillna("(missing)").iloc[split_rows(target)[0]].nunique()
    # age and income, one column per city seen in training; the customer_id column is gone.
    assert data.x_train.shape[1] == 2 + cities
    for x in (data.x_train, data.x_val, data.x_test):
        assert torch.isfinite(x).all()
    result = target.run(quick_config(target, FAST_TABULAR))
    assert result.ok and result.val_metric is not None and result.val_metric > majority_share(data.y_val) + 0.1


@pytest.mark.parametrize("imputer", ["median", "mean"])
def test_preprocessing_is_fitted_on_the_training_split_only(imputer: str) -> None:
    frame = messy_frame()
    first = frame_target(frame)
    train, val, test = split_rows(first)
    # Splits depend on the labels only, so a city seen only outside training keeps the same split.
    frame.loc[np.concatenate([val[:4], test[:4]]), "city"] = "atlantis"
    frame.loc[np.concatenate([val, test]), "age"] += 15.0
    target = frame_target(frame)
    assert all(np.array_equal(a, b) for a, b in zip(split_rows(target), (train, val, test)))
    data = target.load_splits(target.default_config | {"imputer": imputer, "scaler": "standard"})

    age = frame["age"].to_numpy()
    fill = np.nanmedian(age[train]) if imputer == "median" else np.nanmean(age[train])
    everywhere = np.nanmedian(age) if imputer == "median" else np.nanmean(age)
    assert abs(fill - everywhere) > 0.05, "the data must tell a training-only fit from an all-rows fit"
    filled = np.where(np.isnan(age), fill, age)
    mean, std = filled[train].mean(), filled[train].std()
    for rows, x in ((train, data.x_train), (val, data.x_val), (test, data.x_test)):
        np.testing.assert_allclose(x[:, 0].numpy(), (filled[rows] - mean) / std, rtol=1e-4, atol=1e-5)
    income = frame["income"].to_numpy()
    np.testing.assert_allclose(data.x_val[:, 1].numpy(), (income[val] - income[train].mean()) / income[train].std(),
                               rtol=1e-4, atol=1e-5)

    # One-hot columns are the training split's cities; the unseen one encodes as all zeros.
    city = frame["city"].fillna("(missing)").to_numpy()
    assert data.x_train.shape[1] == 2 + len(set(city[train]))
    one_hot_val = data.x_val[:, 2:]
    assert torch.equal(one_hot_val[:4], torch.zeros_like(one_hot_val[:4]))
    assert torch.equal(one_hot_val[4:].sum(1), torch.ones(len(val) - 4))


def test_missing_categories_become_their_own_category() -> None:
    frame = messy_frame()
    features = frame.drop(columns=["plan", "customer_id"])
    config = {"scaler": "standard", "imputer": "median", "poly_degree": 1, "feature_fraction": 1.0}
    pipeline = build_feature_pipeline(features, config, "classification")
    x = pipeline.fit_transform(features, frame["plan"])
    encoder = pipeline.named_steps["columns"].named_transformers_["cat"].named_steps["onehot"]
    assert list(encoder.categories_[0]) == ["(missing)", "east", "north", "south", "west"]
    assert np.array_equal(x[:, 2], frame["city"].isna().to_numpy(dtype=float))


# --- feature knobs ---------------------------------------------------------------------------------------

def test_feature_knobs_change_the_features() -> None:
    target = tabular("wine")
    base = target.default_config
    plain = target.load_splits(base)
    width = plain.x_train.shape[1]
    assert width == 13
    poly = target.load_splits(base | {"poly_degree": 2})
    assert poly.x_train.shape[1] == width + width * (width + 1) // 2
    half = target.load_splits(base | {"feature_fraction": 0.5})
    assert half.x_train.shape[1] == round(width * 0.5)
    minmax = target.load_splits(base | {"scaler": "minmax"})
    assert float(minmax.x_train.min()) == pytest.approx(0.0) and float(minmax.x_train.max()) == pytest.approx(1.0)
    raw = target._read().drop(columns="target").to_numpy(dtype=np.float32)
    unscaled = target.load_splits(base | {"scaler": "none"})
    np.testing.assert_allclose(unscaled.x_train.numpy(), raw[split_rows(target)[0]], rtol=1e-6)
    result = target.run(quick_config(target, FAST_TABULAR, poly_degree=2, feature_fraction=0.5, scaler="robust"))
    assert result.ok


def test_splits_are_cached_per_feature_settings() -> None:
    target = tabular("iris")
    base = target.default_config
    assert target.load_splits(base) is target.load_splits(base | {"learning_rate": 0.1, "hidden_layers": 3})
    assert target.load_splits(base | {"scaler": "minmax"}) is not target.load_splits(base)


# --- splits ----------------------------------------------------------------------------------------------

def _tensors(data: TensorSplits) -> list[torch.Tensor]:
    return [data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test]


def test_same_split_seed_gives_the_same_disjoint_splits(messy_csv: Path) -> None:
    def splits(seed: int) -> TensorSplits:
        target = tabular(f"csv:{messy_csv}", target_column="plan", split_seed=seed)
        return target.load_splits(target.default_config | {"scaler": "none"})

    a, b, c = splits(0), splits(0), splits(1)
    assert all(torch.equal(x, y) for x, y in zip(_tensors(a), _tensors(b)))
    assert not torch.equal(a.y_val, c.y_val) or not torch.equal(a.x_val, c.x_val)
    for data in (a, c):
        # Unscaled income is unique per row, so it identifies rows across splits.
        income = [set(x[:, 1].tolist()) for x in (data.x_train, data.x_val, data.x_test)]
        assert sum(map(len, income)) == 300 and len(set.union(*income)) == 300
        assert not income[0] & income[2] and not income[1] & income[2] and not income[0] & income[1]


def test_a_class_too_small_to_stratify_still_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = ["a"] * 40 + ["b"] * 40 + ["c"] * 3
    frame = pd.DataFrame({"x": [rng.normal() + ord(k) for k in labels], "label": labels})
    target = tabular(write_csv(tmp_path, frame), target_column="label")
    target.check()
    assert target.data_summary().startswith("49 train / 17 val / 17 test")
    assert sorted(np.concatenate(split_rows(target)).tolist()) == list(range(len(frame)))
    assert target.run(quick_config(target, FAST_TABULAR)).ok


# --- columns and task inference --------------------------------------------------------------------------

def test_id_like_columns_are_dropped_and_unique_measurements_kept(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 120
    sqft = rng.choice(np.arange(400, 6000), n, replace=False)  # a different integer in every row, not an id
    frame = pd.DataFrame({"row": np.arange(n), "Id": rng.permutation(n) * 7, "order_ref": rng.permutation(n) + 5000,
                          "code": [f"K{i:05d}" for i in rng.permutation(n)], "sqft": sqft,
                          "rooms": rng.integers(1, 6, n), "price": sqft * 310.0 + rng.normal(0, 5000, n)})
    target = tabular(write_csv(tmp_path, frame), target_column="price")
    assert target.task == "regression"
    assert target.data_summary().endswith("2 columns, numeric target")  # sqft and rooms
    data = target.load_splits(target.default_config | {"scaler": "none"})
    kept_sqft = set(data.x_train[:, 0].tolist()) | set(data.x_val[:, 0].tolist()) | set(data.x_test[:, 0].tolist())
    assert kept_sqft == set(sqft.astype(float).tolist())
    result = target.run(quick_config(target, FAST_TABULAR, epochs=3))
    assert result.ok and result.extra_metrics["val_r2"] > 0.5


@pytest.mark.parametrize(("values", "task"), [
    (["cat", "dog", "bird"] * 10, "classification"),
    ([True, False] * 15, "classification"),
    ([0, 1, 2, 1, 0, 2] * 5, "classification"),
    ([1.0, 2.0, 3.0] * 10, "classification"),
    (list(np.linspace(0.5, 99.5, 30)), "regression"),
    (list(range(30)), "regression"),  # more distinct integers than a class count
])
def test_task_is_inferred_from_the_target_column(tmp_path: Path, values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values)) == task
    frame = pd.DataFrame({"x": np.arange(len(values)) % 7, "y": values})
    assert tabular(write_csv(tmp_path, frame), target_column="y").task == task


def test_an_explicit_task_wins_over_inference(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(40) % 7, "y": [0, 1, 2, 3] * 10})
    target = tabular(write_csv(tmp_path, frame), target_column="y", task="regression")
    assert target.task == "regression" and "label_smoothing" not in target.space
    target.check()


# --- CSV errors ------------------------------------------------------------------------------------------

def _assert_one_line(error: pytest.ExceptionInfo[UserError], *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_csv_without_the_target_column(tmp_path: Path) -> None:
    name = write_csv(tmp_path, pd.DataFrame({"a": range(20), "b": range(20)}))
    with pytest.raises(UserError) as caught:
        tabular(name, target_column="label")
    _assert_one_line(caught, "no column 'label'", "columns are: a, b")
    with pytest.raises(UserError) as caught:
        tabular(name, target_column="label", task="classification").check()
    _assert_one_line(caught, "no column 'label'")


def test_regression_on_a_text_target(messy_csv: Path) -> None:
    target = tabular(f"csv:{messy_csv}", target_column="plan", task="regression")
    with pytest.raises(UserError) as caught:
        target.check()
    _assert_one_line(caught, "regression needs a numeric target", "'plan'", "holds values like")
    with pytest.raises(UserError, match="numeric target"):
        target.run(target.default_config)
    assert target.data_summary().startswith("unavailable:")


@pytest.mark.parametrize(("content", "fragment"), [(b"", "is empty"), (b"age,city,plan\n", "the data set is empty")],
                         ids=["zero-bytes", "header-only"])
def test_empty_csv(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(UserError) as caught:
        tabular(f"csv:{path}", target_column="plan")
    _assert_one_line(caught, fragment)
    with pytest.raises(UserError) as caught:
        tabular(f"csv:{path}", target_column="plan", task="classification").check()
    _assert_one_line(caught, fragment)


def test_missing_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(UserError) as caught:
        tabular(f"csv:{path}", target_column="plan")
    _assert_one_line(caught, "CSV file not found", str(path))


@pytest.mark.parametrize(("frame", "fragment"), [
    (pd.DataFrame({"x": np.linspace(0, 1, 30), "y": ["same"] * 30}), "single class"),
    (pd.DataFrame({"x": np.linspace(0, 1, 8), "y": [0, 1] * 4}), "at least 10 labelled rows"),
    (pd.DataFrame({"x": np.linspace(0, 1, 24), "y": [0, 1, None, None, None, None] * 4}), "at least 10 labelled rows"),
    (pd.DataFrame({"customer_id": range(30), "y": [0, 1] * 15}), "one feature column"),
])
def test_csv_that_cannot_be_learned(tmp_path: Path, frame: pd.DataFrame, fragment: str) -> None:
    target = tabular(write_csv(tmp_path, frame), target_column="y", task="classification")
    with pytest.raises(UserError) as caught:
        target.check()
    _assert_one_line(caught, fragment)
