"""scikit-learn model families as stepped runs: a boosting stage, or one whole fit, per step.

A gradient-boosted model has a curve of its own: each step warm-starts
`STAGE_ITERATIONS` more iterations, is scored on validation, and the best
stage is the one kept (its test metric is measured when it is the best, so
nothing is refitted). Boosting iterations are thus the resource a pruner
or an epoch budget divides. A random forest or a linear model is one fit:
its run is one step, and its curve is one point.

Losses match the MLP's, so curves compare across families: cross-entropy
of the predicted probabilities for classes, mean squared error of the
standardised target for regression.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from lgt.direction import is_better
from tuning_targets.families import GB_PATIENCE_STAGES, STAGE_ITERATIONS, sklearn_threads
from tuning_targets.metrics import Task, classification_scores, metric_direction, pick, regression_scores
from tuning_targets.records import EpochRecord, TrialResult
from tuning_targets.stepping import ModelRun, RefusedChange, StepPlan, out_of_memory_reason, structural_reason

# Bookkeeping a snapshot carries besides the estimator.
_PROGRESS = ("epoch", "best_metric", "best_val_extra", "best_test", "best_epoch", "n_params", "stale", "fail_reason")


@dataclass(frozen=True)
class ArraySplits:
    """Train, validation and test arrays; `y_scale` undoes the regression target's standardisation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    y_scale: float
    n_classes: int


class EstimatorRun(ModelRun):
    """One scikit-learn estimator's training, stepped; see `BoostingRun` and `FitRun`.

    Args:
        family: The model family's name, for messages.
        estimator: An unfitted estimator (`families.build_estimator`).
        data: The arrays it trains on.
        task, metric: What is predicted and what decides the best step.
        config: The trial's config, kept current by `apply()`.
        planned: Steps to train (stages of boosting, or 1).
        dynamic: Knobs that may change between steps.
        started: `time.perf_counter()` at which the trial's clock started.
    """

    def __init__(self, family: str, estimator: Any, data: ArraySplits, *, task: Task, metric: str,
                 config: dict[str, Any], planned: int, dynamic: Collection[str] = (),
                 started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.family, self.estimator, self.data, self.task, self.metric = family, estimator, data, task, metric
        self.direction = metric_direction(metric)
        self.config, self.dynamic, self._planned = dict(config), frozenset(dynamic), planned
        self.history: list[EpochRecord] = []
        self.epoch = 0
        self.first_loss = _constant_loss(data, task)
        self.fail_reason: str | None = None
        self.best_metric: float | None = None
        self.best_val_extra: dict[str, float] = {}
        self.best_test: tuple[float, dict[str, float]] | None = None
        self.best_epoch = 0
        self.n_params = 0
        self.stale = 0
        self._finished = False

    # --- what subclasses decide ---------------------------------------------------------------------------

    @property
    def patience(self) -> int:
        """Steps without validation gain after which the run stops (0: never)."""
        return 0

    def _fit(self) -> None:
        self.estimator.fit(self.data.x_train, self.data.y_train)

    def _lr(self) -> float:
        return 0.0

    # --- stepping -----------------------------------------------------------------------------------------

    @property
    def planned_epochs(self) -> int:
        return self._planned

    @property
    def settings(self) -> StepPlan:
        return StepPlan(self._planned, self.patience)

    @property
    def done(self) -> bool:
        return (self._finished or self.fail_reason is not None or self.epoch >= self._planned
                or bool(self.patience and self.stale >= self.patience))

    def step(self) -> EpochRecord | None:
        if self.done:
            raise RuntimeError("this run is over; restore a snapshot or start a new run")
        self.epoch += 1
        began = time.perf_counter()
        try:
            with threadpool_limits(sklearn_threads(), user_api="openmp"), warnings.catch_warnings():
                # A linear model that needs more solver iterations still predicts; its score says how well.
                warnings.simplefilter("ignore", category=ConvergenceWarning)
                self._fit()
                train_loss, _ = self._score(self.data.x_train, self.data.y_train)
                val_loss, val_scores = self._score(self.data.x_val, self.data.y_val)
        except MemoryError as exc:
            self.fail_reason = f"{out_of_memory_reason(exc)} (in {self.unit} {self.epoch})"
            return None
        value, extra = pick(self.metric, val_scores)
        if not (math.isfinite(value) and math.isfinite(val_loss)):
            self.fail_reason = f"diverged: validation {self.metric} became {value} in {self.unit} {self.epoch}"
            return None
        record = EpochRecord(self.epoch, train_loss, val_loss, value, self._lr(), time.perf_counter() - began)
        self.history.append(record)
        if is_better(value, self.best_metric, self.direction):
            self.best_metric, self.best_val_extra, self.best_epoch, self.stale = value, extra, self.epoch, 0
            # The test metric of the kept model is measured now, while it is the model: a later stage moves on.
            self.best_test = pick(self.metric, self._score(self.data.x_test, self.data.y_test)[1])
            self.n_params = _size(self.estimator)
        else:
            self.stale += 1
        return record

    def finish(self) -> TrialResult:
        self._finished = True
        seconds = time.perf_counter() - self.started
        if self.fail_reason is not None or self.best_metric is None or self.best_test is None:
            return TrialResult("failed", None, None, list(self.history), n_params=self.n_params, seconds=seconds,
                               fail_reason=self.fail_reason or f"no {self.unit} was trained")
        test_metric, test_extra = self.best_test
        extra = ({f"val_{k}": v for k, v in self.best_val_extra.items()}
                 | {f"test_{k}": v for k, v in test_extra.items()})
        return TrialResult("complete", self.best_metric, test_metric, list(self.history), best_epoch=self.best_epoch,
                           seconds=seconds, n_params=self.n_params, extra_metrics=extra)

    def _score(self, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, float]]:
        """(loss, every metric of the task) of the current model on one split."""
        if self.task == "classification":
            proba = np.zeros((len(x), self.data.n_classes))
            proba[:, self.estimator.classes_] = self.estimator.predict_proba(x)  # a class absent from training: 0
            scores = classification_scores(proba, y)
            return scores["log_loss"], scores
        pred = np.asarray(self.estimator.predict(x), dtype=np.float64)
        return float(np.mean((pred - y) ** 2)), regression_scores(pred, y, self.data.y_scale)

    # --- changing knobs -----------------------------------------------------------------------------------

    def refusals(self, changes: dict[str, Any]) -> dict[str, str]:
        if self._finished:
            return {knob: "the run is finished" for knob in changes}
        reasons: dict[str, str] = {}
        for knob in changes:
            if knob not in self.dynamic:
                reasons[knob] = (structural_reason(knob) if knob in self.config
                                 else f"{knob} is not a knob of a {self.family} model")
        return reasons

    def apply(self, changes: dict[str, Any]) -> list[str]:
        refused = self.refusals(changes)
        if refused:
            raise RefusedChange(refused)
        for knob, value in changes.items():
            self._set(knob, value)
            self.config[knob] = value
        return []

    def _set(self, knob: str, value: Any) -> None:
        raise RefusedChange({knob: f"{knob} cannot change inside a {self.family} run"})

    # --- snapshots ----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the estimator (its trees so far) and the bookkeeping."""
        return copy.deepcopy({"estimator": self.estimator, "config": self.config, "history": self.history,
                              "progress": {name: getattr(self, name) for name in _PROGRESS}})

    def restore(self, snap: Any) -> None:
        state = copy.deepcopy(snap)
        self.estimator, self.config, self.history = state["estimator"], state["config"], state["history"]
        for name, value in state["progress"].items():
            setattr(self, name, value)
        self._finished = False


class BoostingRun(EstimatorRun):
    """HistGradientBoosting grown `STAGE_ITERATIONS` iterations per step by warm start.

    Its learning rate may change between stages: the trees already grown
    keep theirs, the next ones shrink by the new value.
    """

    unit: ClassVar[str] = "boosting stage"

    @property
    def patience(self) -> int:
        return GB_PATIENCE_STAGES if self.config.get("gb_early_stopping") else 0

    def _fit(self) -> None:
        self.estimator.max_iter = min(self.epoch * STAGE_ITERATIONS, int(self.config["max_iter"]))
        self.estimator.fit(self.data.x_train, self.data.y_train)

    def _lr(self) -> float:
        return float(self.estimator.learning_rate)

    def _set(self, knob: str, value: Any) -> None:
        if knob == "gb_learning_rate":
            self.estimator.learning_rate = float(value)
        else:
            super()._set(knob, value)


class FitRun(EstimatorRun):
    """A random forest or a linear model: one fit, one step, one point of curve."""

    unit: ClassVar[str] = "fit"


def _constant_loss(data: ArraySplits, task: Task) -> float:
    """The training loss of the best constant guess (class shares, or the mean): where every model starts."""
    if task == "classification":
        shares = np.bincount(data.y_train, minlength=data.n_classes) / max(len(data.y_train), 1)
        return float(-np.mean(np.log(np.clip(shares[data.y_train], 1e-15, 1.0))))
    return float(np.var(data.y_train)) or 1.0


def _size(estimator: Any) -> int:
    """The fitted model's size: tree nodes of a forest or a boosted ensemble, coefficients of a linear model."""
    if hasattr(estimator, "estimators_"):
        return int(sum(tree.tree_.node_count for tree in estimator.estimators_))
    if hasattr(estimator, "coef_"):
        return int(np.size(estimator.coef_) + np.size(getattr(estimator, "intercept_", 0)))
    predictors = getattr(estimator, "_predictors", None)  # HistGradientBoosting keeps its trees privately
    if predictors:
        return int(sum(len(p.nodes) for stage in predictors for p in stage))
    return 0
