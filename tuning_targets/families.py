"""The model families a tabular target may train: the MLP, and what a practitioner reaches for first.

On tables gradient-boosted trees are usually the first thing to try, a
random forest the second and a regularised linear model the honest
baseline; a tuner that can only tune an MLP can lose to an untuned
HistGradientBoosting. So `model` is a knob of the tabular space (the LGT
paper's "architecture" dimension taken literally) and each family brings
its own knobs, active only when it is chosen:

- `mlp`: today's PyTorch MLP and the torch training knobs (the default, so
  earlier results stay comparable);
- `hist_gb`: scikit-learn's HistGradientBoostingClassifier/Regressor;
- `random_forest`: RandomForestClassifier/Regressor;
- `linear`: LogisticRegression (C) or Ridge (alpha).

The feature knobs (scaler, imputer, polynomial crosses, feature selection)
apply to every family. Defaults are scikit-learn's own, so an untuned
family is what a practitioner would get out of the box.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from lgt import environment
from lgt.errors import UserError
from tuning_targets.metrics import Task
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, Knob
from tuning_targets.stepping import TrialRefused

MODEL_FAMILIES = ("mlp", "hist_gb", "random_forest", "linear")
FAMILY_WORDS = {"mlp": "a PyTorch MLP", "hist_gb": "histogram gradient-boosted trees",
                "random_forest": "a random forest", "linear": "a regularised linear model"}
# Boosting iterations per step of a hist_gb run: its curve has a point, and a pruner a look, every this many.
STAGE_ITERATIONS = 10
# With gb_early_stopping on, a hist_gb run stops after this many stages without validation gain.
GB_PATIENCE_STAGES = 2
# Most iterations a LogisticRegression's solver may take (it warns and stops there).
LINEAR_MAX_ITER = 1000
# What a model family's estimated memory may take at most, in bytes (tests lower it); default: the
# same share of this process's memory as the encoded features may take.
MAX_MODEL_BYTES_ENV = environment.MAX_MODEL_BYTES.name
# OpenMP threads a scikit-learn fit may use. One by default: on a CPU shared with other work
# HistGradientBoosting's threads spin-wait on each other (measured here: 0.16 s on one thread,
# 4.9 s on two busy cores, for 100 iterations on breast_cancer).
THREADS_ENV = environment.SKLEARN_THREADS.name
# Bytes of one tree node in scikit-learn's Tree (its Node struct), and of one histogram bin of
# HistGradientBoosting (sum of gradients, sum of hessians, count).
TREE_NODE_BYTES = 64
HISTOGRAM_BIN_BYTES = 20
HISTOGRAM_BINS = 256


def parse_models(models: str | Sequence[str] | None) -> tuple[str, ...]:
    """The model families of a tabular space: all by default, or a comma list such as ``mlp`` or ``mlp,hist_gb``.

    ``mlp`` alone is today's MLP-only space, knob for knob.
    """
    if models is None:
        return MODEL_FAMILIES
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else [str(m).strip() for m in models]
    if names == ["all"]:
        return MODEL_FAMILIES
    unknown = [m for m in names if m not in MODEL_FAMILIES]
    if unknown or not names or len(set(names)) != len(names):
        what = f"unknown model family {unknown[0]!r}" if unknown else "each model family once, at least one"
        raise UserError(f"--models: {what}; choose among {', '.join(MODEL_FAMILIES)} (comma-separated) or all")
    return tuple(m for m in MODEL_FAMILIES if m in names)  # the space's order, whatever order was typed


def model_knob(families: Sequence[str]) -> CategoricalKnob:
    words = "; ".join(f"{f}: {FAMILY_WORDS[f]}" for f in families)
    return CategoricalKnob("model", "architecture", f"Model family; each has its own knobs ({words}).",
                           choices=tuple(families), default=families[0])


def family_knobs(family: str, task: Task) -> list[Knob]:
    """The knobs of a scikit-learn family (the MLP's are the tabular target's own)."""
    if family == "hist_gb":
        return [
            FloatKnob("gb_learning_rate", "hyperparameters", "Shrinkage of each boosting iteration; lower needs more "
                      "iterations and usually generalises better. May change between stages.",
                      low=0.01, high=1.0, log=True, dynamic=True),
            IntKnob("max_iter", "training", f"Boosting iterations at most (trained {STAGE_ITERATIONS} per step; "
                    "the best step by validation is kept).", low=10, high=1000, log=True),
            IntKnob("max_leaf_nodes", "architecture", "Leaves per tree: the trees' capacity.", low=4, high=256,
                    log=True),
            IntKnob("min_samples_leaf", "hyperparameters", "Fewest rows in a leaf; more smooths the trees.",
                    low=1, high=200, log=True),
            FloatKnob("l2_regularization", "hyperparameters", "L2 penalty on leaf values; more regularises.",
                      low=0.0, high=10.0),
            CategoricalKnob("gb_early_stopping", "training", f"Stop after {GB_PATIENCE_STAGES} steps of "
                            f"{STAGE_ITERATIONS} iterations without validation gain.", choices=(False, True)),
        ]
    if family == "random_forest":
        return [
            IntKnob("n_estimators", "architecture", "Trees in the forest; more is steadier and slower.",
                    low=10, high=500, log=True),
            IntKnob("max_depth", "architecture", "Deepest a tree may grow; 0 means no limit.", low=0, high=30),
            CategoricalKnob("max_features", "hyperparameters", "Features each split may consider: log2 or sqrt of "
                            "them, half, or all; fewer decorrelates the trees.",
                            choices=("log2", "sqrt", "half", "all"), ordered=True),
        ]
    if family == "linear":
        if task == "classification":
            return [FloatKnob("C", "hyperparameters", "Inverse L2 strength of the logistic regression; lower "
                              "regularises more.", low=1e-4, high=1e4, log=True)]
        return [FloatKnob("alpha", "hyperparameters", "L2 strength of the ridge regression; higher regularises more.",
                          low=1e-4, high=1e4, log=True)]
    raise ValueError(f"no knobs for model family {family!r}")


def family_defaults(family: str, task: Task) -> Config:
    """scikit-learn's own defaults, so an untuned family is what it is out of the box."""
    table: dict[str, Config] = {
        "hist_gb": {"gb_learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                    "l2_regularization": 0.0, "gb_early_stopping": False},
        "random_forest": {"n_estimators": 100, "max_depth": 0,
                          "max_features": "sqrt" if task == "classification" else "all"},
        "linear": {"C": 1.0} if task == "classification" else {"alpha": 1.0},
    }
    return table[family]


def planned_steps(family: str, config: Mapping[str, Any]) -> int:
    """Steps a run of this family trains: the MLP's epochs, hist_gb's stages, one fit otherwise."""
    if family == "mlp":
        return int(config["epochs"])
    if family == "hist_gb":
        return math.ceil(int(config["max_iter"]) / STAGE_ITERATIONS)
    return 1


def build_estimator(family: str, config: Config, task: Task, seed: int) -> Any:
    """The scikit-learn estimator of a family's config (hist_gb warm-starts: it grows a stage per step)."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    classification = task == "classification"
    seed = seed % 2**32
    if family == "hist_gb":
        boosting = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return boosting(learning_rate=float(config["gb_learning_rate"]), max_iter=STAGE_ITERATIONS,
                        max_leaf_nodes=int(config["max_leaf_nodes"]), min_samples_leaf=int(config["min_samples_leaf"]),
                        l2_regularization=float(config["l2_regularization"]), early_stopping=False,
                        warm_start=True, random_state=seed)
    if family == "random_forest":
        forest = RandomForestClassifier if classification else RandomForestRegressor
        features = {"log2": "log2", "sqrt": "sqrt", "half": 0.5, "all": 1.0}[str(config["max_features"])]
        return forest(n_estimators=int(config["n_estimators"]), max_depth=int(config["max_depth"]) or None,
                      max_features=features, n_jobs=1, random_state=seed)
    if family == "linear":
        if classification:
            return LogisticRegression(C=float(config["C"]), max_iter=LINEAR_MAX_ITER)
        return Ridge(alpha=float(config["alpha"]))
    raise ValueError(f"no estimator for model family {family!r}")


def sklearn_threads() -> int:
    return environment.SKLEARN_THREADS.whole_number("threads") or 1


def model_bytes(family: str, config: Config, *, rows: int, features: int, classes: int) -> int:
    """An upper estimate of what fitting this family's config holds in memory, beyond the features.

    A forest's trees grow up to one leaf per training row (2 rows - 1
    nodes) unless their depth is bounded, each node carrying a value per
    class: 500 unbounded trees on a million rows are tens of gigabytes.
    hist_gb keeps a histogram per feature for each leaf it may split; the
    linear model copies the features once in float64. The MLP's weights are
    small beside its features and are not counted.
    """
    values = max(1, classes)
    if family == "random_forest":
        nodes = 2 * rows - 1
        depth = int(config["max_depth"])
        if depth:
            nodes = min(nodes, 2 ** (depth + 1) - 1)
        return int(config["n_estimators"]) * nodes * (TREE_NODE_BYTES + 8 * values)
    if family == "hist_gb":
        trees_per_iteration = classes if classes > 2 else 1
        histograms = int(config["max_leaf_nodes"]) * features * HISTOGRAM_BINS * HISTOGRAM_BIN_BYTES
        return histograms * trees_per_iteration + rows * features  # the binned copy: one byte per cell
    if family == "linear":
        return rows * features * 8
    return 0


def check_model_memory(family: str, config: Config, *, rows: int, features: int, classes: int, allowed: int,
                       bound: str) -> None:
    """Refuse (`TrialRefused`) a family config whose model would not fit in `allowed` bytes, before fitting it."""
    needed = model_bytes(family, config, rows=rows, features=features, classes=classes)
    if needed <= allowed:
        return
    if family == "random_forest":
        depth = int(config["max_depth"])
        what = (f"random_forest of {int(config['n_estimators']):,} trees "
                f"({f'depth up to {depth}' if depth else 'no depth limit'}) on {rows:,} rows")
    elif family == "hist_gb":
        what = f"hist_gb with {int(config['max_leaf_nodes'])} leaves per tree on {features:,} features"
    else:
        what = f"{family} on {rows:,} rows of {features:,} features"
    raise TrialRefused(f"{what} may take {size_text(needed)}, more than the {size_text(allowed)} allowed ({bound})")


def size_text(n: float) -> str:
    """Bytes as people read them: 4.7 KiB, 2.8 GiB."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
