from __future__ import annotations

import math
from typing import Any

from agent_fakes import ACCURACY, MAE, history

from agents import diagnose, summarize_curve
from agents.diagnostics import flags


def complete(hist: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": "complete", "history": hist, "fail_reason": None}


def test_overfitting_is_val_loss_rising_while_train_loss_falls() -> None:
    hist = history(
        val_metric=[0.80, 0.88, 0.91, 0.90, 0.89],
        train_loss=[1.20, 0.60, 0.30, 0.15, 0.08],
        val_loss=[0.90, 0.50, 0.35, 0.42, 0.55],
    )
    d = diagnose(complete(hist), ACCURACY)
    assert d["overfitting"] and not d["underfitting"] and not d["stopped_too_early"]
    assert d["best_epoch"] == 3 and d["best_val_metric"] == 0.91
    assert math.isclose(d["gap_last"] or 0, 0.47) and math.isclose(d["gap_best"] or 0, 0.05)
    assert math.isclose(d["oscillation"] or 0, 1 / 3)  # falls, then turns once and rises
    assert flags(d) == ["overfitting"]


def test_divergence_from_nan_losses_or_failure_reason() -> None:
    nan_curve = history([0.5, 0.1], [1.0, math.nan], [1.1, math.inf])
    assert diagnose(complete(nan_curve), ACCURACY)["diverged"]

    failed = {"status": "failed", "history": [], "fail_reason": "loss exploded to 1e12 at epoch 3"}
    d = diagnose(failed, ACCURACY)
    assert d["failed"] and d["diverged"] and d["epochs"] == 0 and d["best_epoch"] is None

    out_of_memory = {"status": "failed", "history": [], "fail_reason": "CUDA out of memory"}
    assert not diagnose(out_of_memory, ACCURACY)["diverged"]


def test_plateau_when_last_epochs_add_nothing() -> None:
    flat = history([0.90, 0.95, 0.951, 0.950, 0.9505], [0.5, 0.3, 0.28, 0.27, 0.27], [0.4, 0.3, 0.3, 0.3, 0.3])
    assert diagnose(complete(flat), ACCURACY)["plateau"]
    rising = history([0.80, 0.85, 0.88, 0.90, 0.92], [0.9, 0.7, 0.5, 0.4, 0.3], [0.8, 0.7, 0.6, 0.5, 0.45])
    d = diagnose(complete(rising), ACCURACY)
    assert not d["plateau"] and d["stopped_too_early"]  # still improving at the end
    assert not d["underfitting"]  # train loss fell by two thirds: the model fits the training data


def test_minimized_metric_and_oscillation() -> None:
    hist = history([3.0, 2.0, 2.5, 1.8, 2.2], [4.0, 3.0, 2.8, 2.5, 2.4], [3.1, 2.1, 2.6, 1.9, 2.3])
    d = diagnose(complete(hist), MAE)
    assert d["best_epoch"] == 4 and d["best_val_metric"] == 1.8
    assert d["oscillation"] == 1.0  # every val-loss step reverses the last one


def test_summary_reads_like_the_curves() -> None:
    hist = history([0.81, 0.90, 0.92, 0.94, 0.93], [1.9, 0.9, 0.5, 0.3, 0.21], [0.55, 0.4, 0.3, 0.26, 0.24])
    assert summarize_curve(hist, ACCURACY) == (
        "5 epochs; val accuracy 0.81->0.93 (best 0.94 @4); train loss 1.9->0.21; val loss 0.55->0.24; gap +0.03; 0.6 s/epoch"
    )


def test_empty_and_broken_histories_do_not_raise() -> None:
    assert summarize_curve([], ACCURACY) == "no epochs"
    d = diagnose({"status": "complete", "history": []}, ACCURACY)
    assert d["epochs"] == 0 and flags(d) == []
    broken = [{"epoch": 1, "train_loss": None, "val_loss": "x", "val_metric": math.nan}]
    assert "1 epoch;" in summarize_curve(broken, ACCURACY)
    assert diagnose(complete(broken), ACCURACY)["best_epoch"] is None
