"""The tabular model families: each trains on small real data, reports its curve, and keeps the contract.

hist_gb reports a point per boosting stage and keeps its best stage; a
random forest and a linear model are one fit, one point. The MLP stays the
default, trained exactly as before. Runs of every family step, snapshot and
restore like the torch trainer's, refuse what may not change, and are
refused up front when their model would not fit in memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from recording import Recorder
from target_testkit import FAST_TABULAR, quick_config

from lgt.errors import UserError
from tuning_targets import families
from tuning_targets.estimators import BoostingRun, EstimatorRun, FitRun
from tuning_targets.registry import make_target
from tuning_targets.space import Config
from tuning_targets.stepping import FailedRun, ModelRun, RefusedChange, run_to_end
from tuning_targets.synthetic import SyntheticRun
from tuning_targets.tabular import MLP_DEFAULTS, TabularTarget
from tuning_targets.trainer import TrainingRun

CPU = torch.device("cpu")


def tabular(name: str, **options: Any) -> TabularTarget:
    target = make_target(name, **options)
    assert isinstance(target, TabularTarget)
    return target


def family_config(target: TabularTarget, family: str, **knobs: Any) -> Config:
    return target.space.validate({"model": family, **knobs}, base=target.default_config, strict=True).config


def majority_share(y: torch.Tensor) -> float:
    return float(torch.bincount(y).max()) / len(y)


# --- every family learns, on every kind of task -----------------------------------------------------------

@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("family", ["hist_gb", "random_forest", "linear"])
def test_each_family_classifies_well_above_chance(name: str, family: str) -> None:
    target = tabular(name)
    data = target.load_splits(target.default_config)
    result = target.run(family_config(target, family))
    assert result.ok and result.val_metric is not None and result.test_metric is not None
    assert result.val_metric > majority_share(data.y_val) + 0.2
    assert result.test_metric > majority_share(data.y_test) + 0.2
    assert result.n_params > 0 and result.extra_metrics == {}  # accuracy keeps no extras, as before


@pytest.mark.parametrize("family", ["hist_gb", "random_forest", "linear"])
def test_each_family_regresses_better_than_the_mean(family: str) -> None:
    target = tabular("diabetes")
    data = target.load_splits(target.default_config)
    mean_guess_mae = float((data.y_val - data.y_train.mean()).abs().mean()) * data.y_scale
    result = target.run(family_config(target, family))
    assert result.ok and result.val_metric is not None and result.val_metric < 0.9 * mean_guess_mae
    assert 0.1 < result.extra_metrics["val_r2"] <= 1.0 and result.extra_metrics["val_rmse"] >= result.val_metric
    assert {"test_r2", "test_rmse"} <= set(result.extra_metrics)


def test_hist_gb_reports_a_point_per_stage_and_keeps_its_best_stage() -> None:
    target = tabular("wine")
    recorder = Recorder()
    result = target.run(family_config(target, "hist_gb", max_iter=45, gb_learning_rate=0.3), recorder)
    assert recorder.started == [5]  # ceil(45 / 10) stages
    assert [r.epoch for r in result.history] == [1, 2, 3, 4, 5] and len(recorder.epochs) == 5
    assert all(r.lr == pytest.approx(0.3) for r in result.history)
    # Training loss falls stage by stage; the kept stage is the best by validation, first among equals.
    losses = [r.train_loss for r in result.history]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.1
    best = max(result.history, key=lambda r: (r.val_metric, -r.epoch))
    assert result.best_epoch == best.epoch and result.val_metric == best.val_metric


def test_hist_gb_early_stopping_ends_the_run_after_stages_without_gain() -> None:
    target = tabular("wine")
    config = family_config(target, "hist_gb", max_iter=1000, gb_learning_rate=0.5, gb_early_stopping=True)
    result = target.run(config)
    assert result.ok and len(result.history) < 100
    assert len(result.history) - (result.best_epoch or 0) == families.GB_PATIENCE_STAGES
    off = target.start_run(config | {"gb_early_stopping": False})
    assert off.planned_epochs == 100


def test_forest_and_linear_runs_are_one_step() -> None:
    target = tabular("breast_cancer")
    for family in ("random_forest", "linear"):
        run = target.start_run(family_config(target, family))
        assert isinstance(run, FitRun) and run.planned_epochs == 1 and run.unit == "fit"
        assert run.first_loss == pytest.approx(-(0.627 * math.log(0.627) + 0.373 * math.log(0.373)), abs=0.01)
        record = run.step()
        assert record is not None and record.epoch == 1 and run.done
        assert record.train_loss < run.first_loss
        result = run.finish()
        assert result.ok and result.best_epoch == 1 and len(result.history) == 1


def test_the_same_seed_fits_the_same_model_and_another_seed_another_forest() -> None:
    target = tabular("wine")
    config = family_config(target, "random_forest", n_estimators=20, max_features="log2")
    first, again = target.run(config, seed=3), target.run(config, seed=3)
    assert (first.val_metric, first.test_metric, first.n_params) == (again.val_metric, again.test_metric,
                                                                     again.n_params)
    assert first.history[0].val_loss == again.history[0].val_loss
    assert target.run(config, seed=4).history[0].val_loss != first.history[0].val_loss


def test_the_default_config_is_the_mlp_of_before() -> None:
    target = tabular("iris")
    before = tabular("iris", models="mlp")
    assert target.default_config == {"model": "mlp"} | before.default_config
    assert {k: before.default_config[k] for k in MLP_DEFAULTS} == MLP_DEFAULTS
    config = quick_config(target, FAST_TABULAR, epochs=3)
    run = target.start_run(config, device=CPU)
    assert isinstance(run, TrainingRun)
    ours = target.run(config, device=CPU)
    theirs = before.run({k: v for k, v in config.items() if k != "model"}, device=CPU)
    assert [(r.train_loss, r.val_loss, r.val_metric) for r in ours.history] == \
        [(r.train_loss, r.val_loss, r.val_metric) for r in theirs.history]
    assert (ours.val_metric, ours.test_metric, ours.n_params) == (theirs.val_metric, theirs.test_metric,
                                                                  theirs.n_params)


def test_a_space_of_one_family_has_no_model_knob() -> None:
    assert "model" not in tabular("iris", models="mlp").space
    only_gb = tabular("iris", models="hist_gb")
    assert "model" not in only_gb.space and "hidden_units" not in only_gb.space
    assert only_gb.default_config["max_iter"] == 100 and not only_gb.space.conditional
    assert isinstance(only_gb.start_run(only_gb.default_config), BoostingRun)
    two = tabular("iris", models="linear, mlp")
    assert two.space.knobs["model"].describe()["choices"] == ["mlp", "linear"]
    assert set(two.default_config) >= {"model", "hidden_units"}


@pytest.mark.parametrize(("models", "fragment"), [
    ("xgboost", "unknown model family 'xgboost'"), ("mlp,mlp", "each model family once"), ("", "unknown model")])
def test_unknown_model_families_are_one_line(models: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as caught:
        make_target("iris", models=models)
    assert "\n" not in str(caught.value) and "mlp, hist_gb, random_forest, linear" in str(caught.value)


# --- metrics ------------------------------------------------------------------------------------------------

def test_r2_is_maximised_and_mae_kept_beside_it() -> None:
    target = tabular("diabetes", metric="r2")
    assert target.metric == "r2" and target.direction == "maximize"
    for config in (quick_config(target, FAST_TABULAR, epochs=3), family_config(target, "linear")):
        result = target.run(config, device=CPU)
        assert result.ok and result.val_metric is not None and 0.0 < result.val_metric < 1.0
        assert {"val_mae", "val_rmse", "test_mae", "test_rmse"} == set(result.extra_metrics)
        assert result.extra_metrics["val_mae"] > 10  # in the target's units


def test_log_loss_is_minimised_and_accuracy_kept_beside_it() -> None:
    target = tabular("wine", metric="log_loss")
    assert target.direction == "minimize"
    mlp = target.run(quick_config(target, FAST_TABULAR, epochs=3), device=CPU)
    assert mlp.ok and mlp.val_metric is not None
    # For the MLP the validation loss is the log loss: the kept epoch is the lowest one.
    assert mlp.val_metric == pytest.approx(min(r.val_loss for r in mlp.history), rel=1e-5)
    gb = target.run(family_config(target, "hist_gb", max_iter=60))
    assert gb.val_metric == pytest.approx(min(r.val_loss for r in gb.history))
    assert set(gb.extra_metrics) == {"val_accuracy", "test_accuracy"} and gb.extra_metrics["val_accuracy"] > 0.8


@pytest.mark.parametrize(("name", "metric", "fragment"), [
    ("wine", "r2", "metric 'r2' is for regression; this target is classification: choose one of accuracy, log_loss"),
    ("diabetes", "accuracy", "choose one of mae, rmse, r2"),
    ("iris", "f1", "unknown metric 'f1'"),
    ("synthetic", "log_loss", "scores accuracy only")])
def test_a_metric_that_does_not_fit_is_one_line(name: str, metric: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        make_target(name, metric=metric)


def test_images_may_be_tuned_on_log_loss() -> None:
    target = make_target("digits", metric="log_loss")
    result = target.run(quick_config(target, {"optimizer": "adam", "learning_rate": 0.003, "conv_blocks": 1}),
                        device=CPU)
    assert result.ok and result.val_metric is not None and result.val_metric == pytest.approx(
        result.history[0].val_loss, rel=1e-5)
    assert 0.0 < result.extra_metrics["val_accuracy"] <= 1.0


# --- the run contract for every family -------------------------------------------------------------------

def test_a_hist_gb_stage_trained_twice_from_one_snapshot_is_identical() -> None:
    target = tabular("breast_cancer")
    run = target.start_run(family_config(target, "hist_gb", max_iter=50))
    assert isinstance(run, BoostingRun) and run.unit == "boosting stage"
    run.step()
    snap = run.snapshot()
    first = run.step()
    run.restore(snap)
    again = run.step()
    assert first is not None and again is not None
    assert (first.epoch, first.train_loss, first.val_loss, first.val_metric) == \
        (again.epoch, again.train_loss, again.val_loss, again.val_metric)
    run.restore(snap)  # the snapshot survives a restore
    assert run.epoch == 1 and len(run.history) == 1


def test_hist_gbs_learning_rate_may_change_between_stages_and_nothing_else() -> None:
    target = tabular("breast_cancer")
    config = family_config(target, "hist_gb", max_iter=40)
    run = target.start_run(config)
    assert set(target.dynamic_knobs(config)) == {"gb_learning_rate"} == set(run.dynamic)
    run.step()
    with pytest.raises(RefusedChange) as caught:
        run.apply({"max_leaf_nodes": 8, "learning_rate": 0.1})
    assert caught.value.reasons == {"max_leaf_nodes": "structural knob max_leaf_nodes cannot change inside a run",
                                    "learning_rate": "learning_rate is not a knob of a hist_gb model"}
    assert run.config == config
    slow = run.snapshot()
    run.apply({"gb_learning_rate": 0.01})
    small = run.step()
    run.restore(slow)
    large = run.step()
    assert small is not None and large is not None and small.lr == 0.01 and large.lr == pytest.approx(0.1)
    assert small.train_loss > large.train_loss  # smaller steps, slower descent
    assert run.dynamic_values() == {"gb_learning_rate": 0.1}


def test_forest_and_linear_runs_refuse_every_change() -> None:
    target = tabular("wine")
    for family in ("random_forest", "linear"):
        config = family_config(target, family)
        run = target.start_run(config)
        assert run.dynamic == frozenset() and target.dynamic_knobs(config) == ()
        assert set(run.refusals({"n_estimators": 5, "C": 2.0, "scaler": "none"})) == {"n_estimators", "C", "scaler"}


def test_an_mlp_run_of_the_family_space_may_not_move_hist_gbs_knobs() -> None:
    target = tabular("iris")
    run = target.start_run(quick_config(target, FAST_TABULAR, epochs=2), device=CPU)
    assert "gb_learning_rate" not in run.dynamic and "learning_rate" in run.dynamic
    assert run.refusals({"gb_learning_rate": 0.2}) == {"gb_learning_rate": "unknown knob gb_learning_rate"}


def test_synthetic_runs_need_no_torch_model_and_step_like_any_run() -> None:
    target = make_target("synthetic:0")
    run = target.start_run(target.default_config | {"epochs": 3})
    assert isinstance(run, SyntheticRun) and isinstance(run, ModelRun) and run.planned_epochs == 3
    run.step()
    snap = run.snapshot()
    run.apply({"x": 0.7, "y": 0.3})
    moved = run.step()
    run.restore(snap)
    assert run.config["x"] == 0.2 and run.epoch == 1
    with pytest.raises(RefusedChange, match="structural knob shape"):
        run.apply({"shape": "wide"})
    result = run_to_end(run)
    assert result.ok and result.best_epoch == 3 and moved is not None
    assert result.val_metric == target.score(target.default_config)


def test_a_failed_start_is_a_plain_failed_run() -> None:
    run = FailedRun("refused: too big", config={"model": "linear", "C": 1.0}, planned=1)
    assert run.done and run.step() is None and run.refusals({"C": 2.0}) == {"C": "the run never started: refused: too big"}
    result = run_to_end(run, Recorder())
    assert result.status == "failed" and result.fail_reason == "refused: too big" and result.history == []


# --- memory ---------------------------------------------------------------------------------------------

def _wide_csv(path: Path, rows: int, columns: int) -> str:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).round(3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(columns)])
    frame["y"] = (x[:, 0] + x[:, 1] > 0).astype(int)
    frame.to_csv(path, index=False)
    return f"csv:{path}"


def test_a_huge_forest_is_refused_before_it_is_fitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tabular(_wide_csv(tmp_path / "wide.csv", 400, 300), target_column="y")
    monkeypatch.setenv(families.MAX_MODEL_BYTES_ENV, str(8 * 1024**2))
    small = target.run(family_config(target, "random_forest", n_estimators=20, max_depth=4))
    assert small.ok
    run = target.start_run(family_config(target, "random_forest", n_estimators=500))
    assert isinstance(run, FailedRun) and run.done and run.planned_epochs == 1
    result = run.finish()
    assert result.status == "failed" and result.fail_reason == (
        "refused: random_forest of 500 trees (no depth limit) on 240 rows may take 18.3 MiB, more than the "
        "8.0 MiB allowed (set by LGT_MAX_MODEL_BYTES)")
    # Many leaves' histograms over 300 features: refused the same way.
    gb = target.start_run(family_config(target, "hist_gb", max_leaf_nodes=256))
    assert gb.done and gb.finish().fail_reason == (
        "refused: hist_gb with 256 leaves per tree on 300 features may take 375.1 MiB, more than the 8.0 MiB "
        "allowed (set by LGT_MAX_MODEL_BYTES)")


def test_the_model_bound_defaults_to_a_share_of_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from tuning_targets import tabular as module

    monkeypatch.delenv(families.MAX_MODEL_BYTES_ENV, raising=False)
    assert module.max_model_bytes() == int(module.memory_limit_bytes() * module.FEATURE_MEMORY_SHARE)
    monkeypatch.setenv(families.MAX_MODEL_BYTES_ENV, "lots")
    with pytest.raises(UserError, match="LGT_MAX_MODEL_BYTES must be a whole number of bytes, got 'lots'"):
        module.max_model_bytes()


def test_an_allocation_that_fails_inside_a_fit_is_a_failed_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    target = tabular("wine")
    run = target.start_run(family_config(target, "random_forest"))
    assert isinstance(run, EstimatorRun)

    def exhausted(*args: Any) -> None:
        np.empty((10**8, 10**7))

    monkeypatch.setattr(run.estimator, "fit", exhausted)
    assert run.step() is None and run.done
    assert run.fail_reason is not None and run.fail_reason.startswith("out of memory: Unable to allocate")
    assert run.fail_reason.endswith("(in fit 1)")
    assert run.finish().status == "failed"
