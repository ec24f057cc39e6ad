"""The metrics a target may be tuned on, and how each is computed from a model's predictions.

Accuracy (classification) and MAE (regression) are the defaults, as they
always were. A user may choose another where it fits their problem: log
loss when calibrated probabilities matter, R2 or RMSE for regression. The
chosen metric decides the best epoch, early stopping, the best trial and the
study's direction; the others of the task are kept beside it as extras.

Torch models are scored in `tuning_targets.trainer` on tensors (so today's
accuracy and MAE stay bit for bit what they were); scikit-learn models are
scored here on numpy arrays with the same definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from lgt.direction import Direction
from lgt.errors import UserError

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class MetricInfo:
    task: Task
    direction: Direction
    description: str


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("classification", "maximize", "share of rows whose class is predicted right"),
    "log_loss": MetricInfo("classification", "minimize", "cross-entropy of the predicted class probabilities"),
    "mae": MetricInfo("regression", "minimize", "mean absolute error, in the target's units"),
    "rmse": MetricInfo("regression", "minimize", "root mean squared error, in the target's units"),
    "r2": MetricInfo("regression", "maximize", "coefficient of determination (1 is perfect, 0 the mean's guess)"),
}
DEFAULT_METRIC: dict[Task, str] = {"classification": "accuracy", "regression": "mae"}
# The other metrics stored beside the chosen one (as val_/test_ extras). The defaults keep what
# they always stored: nothing beside accuracy, R2 and RMSE beside MAE.
EXTRAS: dict[str, tuple[str, ...]] = {"accuracy": (), "log_loss": ("accuracy",), "mae": ("r2", "rmse"),
                                      "rmse": ("mae", "r2"), "r2": ("mae", "rmse")}
# Probabilities are clipped here before the log, as scikit-learn's log_loss does for float64.
PROBABILITY_FLOOR = 1e-15


def metric_names(task: Task | None = None) -> tuple[str, ...]:
    return tuple(name for name, info in METRICS.items() if task is None or info.task == task)


def check_metric(task: Task, metric: str | None) -> str:
    """The metric to tune: `metric` if it fits the task, the task's default when None; a one-line UserError otherwise."""
    if metric is None:
        return DEFAULT_METRIC[task]
    info = METRICS.get(metric)
    if info is None:
        raise UserError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    if info.task != task:
        raise UserError(f"metric {metric!r} is for {info.task}; this target is {task}: choose one of "
                        f"{', '.join(metric_names(task))}")
    return metric


def metric_direction(metric: str) -> Direction:
    return METRICS[metric].direction


def classification_scores(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss of class probabilities `proba` (rows x classes) against labels `y`."""
    picked = proba[np.arange(len(y)), y]
    return {"accuracy": float(np.mean(proba.argmax(axis=1) == y)),
            "log_loss": float(-np.mean(np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0))))}


def regression_scores(pred: np.ndarray, y: np.ndarray, y_scale: float) -> dict[str, float]:
    """MAE, RMSE and R2 in the target's units, from predictions and targets both standardised by `y_scale`."""
    err = (pred.astype(np.float64) - y) * y_scale
    ss_tot = max(float((((y - y.mean()) * y_scale) ** 2).sum()), 1e-12)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "r2": float(1 - (err ** 2).sum() / ss_tot)}


def pick(metric: str, scores: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The chosen metric's value and its extras, from every score of the task."""
    return scores[metric], {name: scores[name] for name in EXTRAS[metric]}
