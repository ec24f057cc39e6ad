"""Tabular targets: scikit-learn's built-in sets and any CSV, with a torch MLP or a scikit-learn model.

Real CSVs are messy (mixed types, gaps, id columns, text labels), so the
frame goes through a scikit-learn ColumnTransformer that is fitted on the
training split only. Its scaler, imputer, polynomial features and feature
selection are knobs of the search space: feature engineering is one of the
four things LGT tunes. Which model learns from the features is a knob too
(`model`: mlp, hist_gb, random_forest, linear; see `tuning_targets.families`),
unless the target is made with one family only (`models="mlp"` is the
MLP-only space of before, knob for knob).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from torch import nn

from lgt import environment
from lgt.errors import UserError
from tuning_targets import families
from tuning_targets.base import ACTIVATIONS, TRAINING_DEFAULTS, class_balance, training_knobs
from tuning_targets.estimators import ArraySplits, BoostingRun, EstimatorRun, FitRun
from tuning_targets.families import size_text
from tuning_targets.space import CategoricalKnob, Condition, Config, FloatKnob, IntKnob, Knob, SearchSpace
from tuning_targets.stepping import FailedRun, ModelRun, TrialRefused, out_of_memory_reason
from tuning_targets.torch_target import TorchTarget, activation
from tuning_targets.trainer import Task, TensorSplits

FEATURE_KNOBS = ("scaler", "imputer", "poly_degree", "feature_fraction")
FEATURE_DEFAULTS: Config = {"scaler": "standard", "imputer": "median", "poly_degree": 1, "feature_fraction": 1.0}
# The MLP's own defaults beside the shared training ones: the untuned config of every earlier result.
MLP_DEFAULTS: Config = {"epochs": 30, "batch_size": 32, "hidden_units": 64, "hidden_layers": 1, "activation": "relu",
                        "batch_norm": False, "dropout": 0.0}
# A numeric target with at most this many distinct integer values is read as classes.
MAX_INTEGER_CLASSES = 20
MAX_CATEGORIES = 20
# Feature-engineering variants whose tensors are kept, per target.
SPLIT_CACHE_SIZE = 16
# Encoded features (rows x columns x 8 bytes, all splits) may take at most this share of the memory
# this process may use: fitting the pipeline holds about twice that at its peak (the float64
# expansion, the selected copy, the float32 tensors). A config beyond it fails as a trial.
FEATURE_MEMORY_SHARE = 0.25
# Overrides the bound, in bytes (tests lower it; a shared machine may want less).
MAX_FEATURE_BYTES_ENV = environment.MAX_FEATURE_BYTES.name


class Mlp(nn.Module):
    def __init__(self, in_features: int, out_features: int, config: Config) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(int(config["hidden_layers"])):
            layers.append(nn.Linear(width, int(config["hidden_units"])))
            if config["batch_norm"]:
                layers.append(nn.BatchNorm1d(int(config["hidden_units"])))
            layers += [activation(str(config["activation"])), nn.Dropout(float(config["dropout"]))]
            width = int(config["hidden_units"])
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def infer_task(y: pd.Series) -> Task:
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return "classification"
    values = y.dropna()
    if len(values) and (values == values.round()).all() and values.nunique() <= MAX_INTEGER_CLASSES:
        return "classification"
    return "regression"


def _id_like(name: str, column: pd.Series) -> bool:
    """Row identifiers carry no signal and would let a model memorise rows.

    Beyond the name, an identifier is a text column unique to each row, or
    unique integers packed as densely as row numbers: a count or a price
    that happens to differ in every row is a feature, not an id.
    """
    if re.fullmatch(r"(?i)(id|index|.*[_ ]id|uuid|row(_?num(ber)?)?)", str(name)):
        return True
    if len(column) <= MAX_CATEGORIES or column.nunique(dropna=True) != len(column):
        return False
    if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return int(column.max()) - int(column.min()) < 2 * len(column)
    return not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


class TabularTarget(TorchTarget):
    """A data frame with a target column, split 60/20/20 by `split_seed`.

    `models` names the model families of the space (default: all of
    `families.MODEL_FAMILIES`, chosen by the `model` knob); the default
    config is the MLP's whenever the MLP is among them. `metric` chooses
    what is tuned (`tuning_targets.metrics`).
    """

    def __init__(self, name: str, frame_loader: Callable[[], pd.DataFrame], target_column: str, *,
                 task: Task | None = None, description: str = "", split_seed: int = 0,
                 models: str | Sequence[str] | None = None, metric: str | None = None) -> None:
        self.name = name
        self.description = description
        self._frame_loader = frame_loader
        self.target_column = target_column
        self._frame: pd.DataFrame | None = None
        self._prepared: tuple[pd.DataFrame, np.ndarray, list[np.ndarray], int] | None = None
        self._split_cache: dict[tuple[Any, ...], TensorSplits] = {}
        # The space depends on the task (label smoothing is for classes only), so a
        # CSV whose task is not given is read now to infer it.
        self.task = task or infer_task(self._read()[target_column])
        self.models = families.parse_models(models)
        super().__init__(split_seed=split_seed, metric=metric)

    def build_space(self) -> SearchSpace:
        """The MLP-only space of before when `models` is mlp alone; else `model` first, each family's knobs under it.

        Every knob of a family is active only while `model` names that
        family; the feature knobs come last and apply to every family.
        """
        if self.models == ("mlp",):
            return SearchSpace(self._mlp_knobs() + self._feature_knobs())
        defaults = self._all_defaults()
        knobs: list[Knob] = [families.model_knob(self.models)] if len(self.models) > 1 else []
        for family in self.models:
            own = self._mlp_knobs() if family == "mlp" else families.family_knobs(family, self.task)
            condition: Condition | None = {"model": (family,)} if len(self.models) > 1 else None
            knobs += [dataclasses.replace(k, active_when=condition, default=defaults[k.name]) for k in own]
        knobs += [dataclasses.replace(k, default=defaults[k.name]) for k in self._feature_knobs()]
        return SearchSpace(knobs)

    def _mlp_knobs(self) -> list[Knob]:
        return training_knobs(max_epochs=200, classification=self.task == "classification") + [
            CategoricalKnob("hidden_units", "architecture", "Width of each hidden layer of the MLP.",
                            choices=(16, 32, 64, 128, 256, 512)),
            IntKnob("hidden_layers", "architecture", "Hidden layers in the MLP.", low=1, high=4),
            CategoricalKnob("activation", "architecture", "Non-linearity between layers.", choices=ACTIVATIONS),
            CategoricalKnob("batch_norm", "architecture", "Batch normalisation after each hidden layer.", choices=(False, True)),
            FloatKnob("dropout", "architecture", "Dropout after each hidden layer; regularises against overfitting.",
                      low=0.0, high=0.6, dynamic=True),
        ]

    @staticmethod
    def _feature_knobs() -> list[Knob]:
        return [
            CategoricalKnob("scaler", "features", "Scaling of numeric columns: standard (z-score), min-max, robust (median/IQR) or none.",
                            choices=("standard", "minmax", "robust", "none")),
            CategoricalKnob("imputer", "features", "How missing numeric values are filled: column median or mean.",
                            choices=("median", "mean")),
            CategoricalKnob("poly_degree", "features", "Degree of polynomial feature crosses: 1 keeps features as they are, 2 adds pairwise products.",
                            choices=(1, 2)),
            FloatKnob("feature_fraction", "features", "Fraction of features kept by univariate selection (F-test) after encoding.",
                      low=0.2, high=1.0),
        ]

    def _all_defaults(self) -> Config:
        """Every knob's default, each family's included (the MLP's are the defaults of before)."""
        values: Config = TRAINING_DEFAULTS | MLP_DEFAULTS | FEATURE_DEFAULTS
        for family in families.MODEL_FAMILIES[1:]:
            values |= families.family_defaults(family, self.task)
        return values | {"model": self.models[0]}

    def default_values(self) -> dict[str, Any]:
        """The first family's defaults (the MLP's, exactly as before, whenever it is in the space)."""
        return self.space.active_config(self._all_defaults())

    # --- model families -----------------------------------------------------------------------------------

    def family(self, config: Config) -> str:
        """The model family a config trains."""
        return str(config.get("model", self.models[0]))

    def planned_steps(self, config: Config) -> int:
        return families.planned_steps(self.family(config), config)

    def max_steps(self) -> int:
        highs = {k.name: int(getattr(k, "high", 1)) for k in self.space if isinstance(k, IntKnob)}
        return max(families.planned_steps(f, highs) if f != "mlp" or "epochs" in highs else 1 for f in self.models)

    def start_run(self, config: Config, *, seed: int = 0, device: torch.device | None = None) -> ModelRun:
        """The MLP's `TrainingRun`, or a scikit-learn family's `EstimatorRun` (a `FailedRun` if refused).

        A family config whose model would not fit in memory (a forest of
        many unbounded trees on many rows, hist_gb's histograms on a very
        wide table) is refused before it is fitted, as a too-wide feature
        expansion is: one failed trial with its reason.
        """
        config = self.space.validate(config, base=self.default_config, strict=True).config
        family = self.family(config)
        if family == "mlp":
            return super().start_run(config, seed=seed, device=device)
        started = time.perf_counter()
        dynamic = self.dynamic_knobs(config)
        try:
            data = self.load_splits(config)
            n_classes = self._prepare()[3] if self.task == "classification" else 1
            families.check_model_memory(family, config, rows=len(data.x_train), features=int(data.x_train.shape[1]),
                                        classes=n_classes, allowed=max_model_bytes(), bound=_bound_text(
                                            environment.MAX_MODEL_BYTES))
            estimator = families.build_estimator(family, config, self.task, seed)
        except (TrialRefused, MemoryError) as exc:
            reason = f"refused: {exc}" if isinstance(exc, TrialRefused) else out_of_memory_reason(exc)
            return FailedRun(reason, config=config, planned=self.planned_steps(config), dynamic=dynamic,
                             started=started)
        arrays = ArraySplits(data.x_train.numpy(), data.y_train.numpy(), data.x_val.numpy(), data.y_val.numpy(),
                             data.x_test.numpy(), data.y_test.numpy(), y_scale=data.y_scale, n_classes=n_classes)
        kind: type[EstimatorRun] = BoostingRun if family == "hist_gb" else FitRun
        return kind(family, estimator, arrays, task=self.task, metric=self.metric, config=config,
                    planned=self.planned_steps(config), dynamic=dynamic, started=started)

    def _prepare(self) -> tuple[pd.DataFrame, np.ndarray, list[np.ndarray], int]:
        """Read, clean and split the frame once; returns (features, y, split indices, n_outputs)."""
        if self._prepared is not None:
            return self._prepared
        frame = self._read().dropna(subset=[self.target_column])
        y_raw = frame[self.target_column]
        features = frame.drop(columns=[self.target_column])
        features = features.drop(columns=[c for c in features.columns if _id_like(c, features[c])])
        if len(frame) < 10 or features.shape[1] == 0:
            raise UserError(f"{self.name}: need at least 10 labelled rows and one feature column, "
                            f"got {len(frame)} rows and {features.shape[1]} usable columns")
        task = self.task
        if task == "regression":
            y_num = pd.to_numeric(y_raw, errors="coerce")
            if y_num.isna().any():
                raise UserError(f"{self.name}: regression needs a numeric target, but {self.target_column!r} "
                                f"holds values like {y_raw[y_num.isna()].iloc[0]!r}")
            y = y_num.to_numpy(dtype=np.float32)
            n_out = 1
        else:
            classes, y = np.unique(y_raw.astype(str), return_inverse=True)
            if len(classes) < 2:
                raise UserError(f"{self.name}: the target column {self.target_column!r} has a single class")
            n_out = len(classes)
        labels = y if task == "classification" else None
        train_idx, rest = _split(np.arange(len(frame)), labels, 0.4, self.split_seed)
        val_idx, test_idx = _split(rest, labels, 0.5, self.split_seed)
        self._prepared = (features.reset_index(drop=True), y, [train_idx, val_idx, test_idx], n_out)
        return self._prepared

    def _read(self) -> pd.DataFrame:
        if self._frame is None:
            frame = self._frame_loader()
            if frame.empty or len(frame.columns) == 0:
                raise UserError(f"{self.name}: the data set is empty")
            if self.target_column not in frame.columns:
                raise UserError(f"{self.name}: no column {self.target_column!r}; columns are: "
                                f"{', '.join(map(str, frame.columns))}{_delimiter_hint(frame)}")
            self._frame = frame
        return self._frame

    def check(self) -> None:
        """Read and validate the data now, so bad input fails before a study is created."""
        self._prepare()

    def load_splits(self, config: Config) -> TensorSplits:
        key = tuple(config[k] for k in FEATURE_KNOBS)
        if key not in self._split_cache:
            if len(self._split_cache) >= SPLIT_CACHE_SIZE:
                del self._split_cache[next(iter(self._split_cache))]
            self._split_cache[key] = self._splits_for(key)
        return self._split_cache[key]

    def _splits_for(self, feature_values: tuple[Any, ...]) -> TensorSplits:
        features, y, (tr, va, te), _ = self._prepare()
        check_feature_memory(features, int(dict(zip(FEATURE_KNOBS, feature_values))["poly_degree"]))
        pipeline = build_feature_pipeline(features, dict(zip(FEATURE_KNOBS, feature_values)), self.task)
        x_train = pipeline.fit_transform(features.iloc[tr], y[tr])
        x_val, x_test = pipeline.transform(features.iloc[va]), pipeline.transform(features.iloc[te])

        def tensor(x: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float32))

        if self.task == "classification":
            ys = [torch.as_tensor(y[i], dtype=torch.long) for i in (tr, va, te)]
            scale = 1.0
        else:
            mean, scale = float(y[tr].mean()), float(y[tr].std() or 1.0)
            ys = [torch.as_tensor((y[i] - mean) / scale, dtype=torch.float32) for i in (tr, va, te)]
        return TensorSplits(tensor(x_train), ys[0], tensor(x_val), ys[1], tensor(x_test), ys[2], y_scale=scale)

    def build_model(self, config: Config, data: TensorSplits) -> nn.Module:
        return Mlp(data.x_train.shape[1], self._prepare()[3], config)

    def data_profile(self) -> dict[str, Any]:
        features, y, (tr, va, te), _ = self._prepare()
        numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
                   and not pd.api.types.is_bool_dtype(features[c])]
        cells = features.shape[0] * features.shape[1]
        profile: dict[str, Any] = {
            "rows": {"train": len(tr), "val": len(va), "test": len(te)},
            "features": {"numeric": len(numeric), "categorical": features.shape[1] - len(numeric)},
            "missing_share": round(float(features.isna().to_numpy().sum()) / cells, 4) if cells else 0.0,
            "columns": [str(c) for c in features.columns],
        }
        if self.task == "classification":
            profile["classes"] = class_balance(y[tr].tolist())
        else:
            train = y[tr].astype(float)
            profile["target"] = {"mean": round(float(train.mean()), 4), "std": round(float(train.std()), 4),
                                 "min": round(float(train.min()), 4), "max": round(float(train.max()), 4)}
        return profile

    def data_summary(self) -> str:
        try:
            features, _, (tr, va, te), n_out = self._prepare()
        except UserError as exc:
            return f"unavailable: {exc}"
        kind = f"{n_out} classes" if self.task == "classification" else "numeric target"
        return f"{len(tr)} train / {len(va)} val / {len(te)} test, {features.shape[1]} columns, {kind}"


def expanded_width(features: pd.DataFrame, poly_degree: int) -> tuple[int, int]:
    """(columns after encoding, columns after the polynomial expansion), counted before anything is built.

    A categorical column one-hot encodes to at most `MAX_CATEGORIES`
    columns (its values plus one for gaps, the rest grouped as infrequent);
    degree d crosses n columns into C(n + d, d) - 1 (no bias column).
    """
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
               and not pd.api.types.is_bool_dtype(features[c])]
    encoded = len(numeric) + sum(min(int(features[c].nunique(dropna=True)) + 1, MAX_CATEGORIES)
                                 for c in features.columns if c not in numeric)
    return encoded, math.comb(encoded + poly_degree, poly_degree) - 1


def memory_limit_bytes() -> int:
    """What this process may allocate at most: physical memory, capped by a cgroup or `ulimit -v` limit."""
    limits: list[int] = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(OSError, ValueError):
        limits.append(int(Path("/sys/fs/cgroup/memory.max").read_text().strip()))  # "max" when unlimited
    with contextlib.suppress(ValueError, OSError, AttributeError):
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    positive = [n for n in limits if n > 0]
    return min(positive) if positive else 4 * 1024**3


def max_feature_bytes() -> int:
    """The bound on a config's encoded features: `LGT_MAX_FEATURE_BYTES`, else a share of the memory limit."""
    return _bound(environment.MAX_FEATURE_BYTES)


def max_model_bytes() -> int:
    """The bound on a model family's estimated memory: `LGT_MAX_MODEL_BYTES`, else the same share of the limit."""
    return _bound(environment.MAX_MODEL_BYTES)


def _bound(variable: environment.Variable) -> int:
    return variable.whole_number("bytes") or int(memory_limit_bytes() * FEATURE_MEMORY_SHARE)


def _bound_text(variable: environment.Variable) -> str:
    return (f"set by {variable.name}" if variable.text() else
            f"{FEATURE_MEMORY_SHARE:.0%} of the memory this process may use; {variable.name} sets it")


def check_feature_memory(features: pd.DataFrame, poly_degree: int) -> None:
    """Refuse (`TrialRefused`) a feature expansion too big for this machine, before it is attempted.

    Degree 2 on a wide CSV is a value the space allows: 5,000 columns cross
    into 12.5 million, and fitting that ends the process with numpy's
    out-of-memory error. Refused here, it is one failed trial with its
    reason, and the tuner moves on.
    """
    encoded, width = expanded_width(features, poly_degree)
    needed = len(features) * width * 8
    allowed = max_feature_bytes()
    if needed <= allowed:
        return
    grown = (f"poly_degree {poly_degree} would cross {encoded:,} encoded features into {width:,} columns"
             if poly_degree > 1 else f"{encoded:,} encoded features")
    bound = _bound_text(environment.MAX_FEATURE_BYTES)
    raise TrialRefused(f"{grown}; {len(features):,} rows of them take {size_text(needed)}, more than the "
                       f"{size_text(allowed)} allowed ({bound})")


def _delimiter_hint(frame: pd.DataFrame) -> str:
    """When a file was split on the wrong delimiter its header is one column holding the real one."""
    if len(frame.columns) != 1:
        return ""
    header = str(frame.columns[0])
    found = [d for d in CSV_DELIMITERS if d in header]
    return f"; the file looks {_shown(found[0])}-separated: pass --csv-sep {_shown(found[0])}" if found else ""


def _split(idx: np.ndarray, labels: np.ndarray | None, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split `idx`, stratified by class when every class is large enough to be spread over both parts."""
    from sklearn.model_selection import train_test_split

    if labels is not None:
        try:
            parts = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels[idx])
            return parts[0], parts[1]
        except ValueError:
            pass  # a class too small to stratify (or more classes than rows in a part)
    parts = train_test_split(idx, test_size=test_size, random_state=seed)
    return parts[0], parts[1]


def build_feature_pipeline(features: pd.DataFrame, config: dict[str, Any], task: Task) -> Any:
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
               and not pd.api.types.is_bool_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    scaler = {"standard": StandardScaler(), "minmax": MinMaxScaler(), "robust": RobustScaler(),
              "none": "passthrough"}[config["scaler"]]
    steps = []
    if numeric:
        steps.append(("num", Pipeline([("impute", SimpleImputer(strategy=config["imputer"])), ("scale", scaler)]),
                      numeric))
    if categorical:
        steps.append(("cat", Pipeline([
            ("as_text", FunctionTransformer(_as_text)),
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
            ("onehot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_CATEGORIES,
                                     sparse_output=False))]), categorical))
    stages: list[tuple[str, Any]] = [("columns", ColumnTransformer(steps, sparse_threshold=0.0))]
    if int(config["poly_degree"]) > 1:
        stages.append(("poly", PolynomialFeatures(int(config["poly_degree"]), include_bias=False)))
    if float(config["feature_fraction"]) < 1.0:
        score = f_classif if task == "classification" else f_regression
        stages.append(("select", _FractionSelect(score, float(config["feature_fraction"]))))
    return Pipeline(stages)


def _as_text(x: Any) -> Any:
    """Mixed-type categorical columns become strings so the encoder sees one type.

    Gaps (None, NaN, pd.NA) stay NaN, for the imputer to mark as "(missing)".
    """
    return pd.DataFrame(x).astype(object).map(lambda v: np.nan if pd.isna(v) else str(v)).astype(object)


class _FractionSelect(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """SelectKBest with k as a fraction, since the width after encoding is unknown up front."""

    def __init__(self, score: Any = None, fraction: float = 1.0) -> None:
        self.score = score
        self.fraction = fraction

    def fit(self, x: Any, y: Any) -> _FractionSelect:
        k = max(1, round(x.shape[1] * self.fraction))
        with np.errstate(divide="ignore", invalid="ignore"):
            self.selector_ = SelectKBest(self.score, k=k).fit(x, y)
        return self

    def transform(self, x: Any) -> Any:
        return self.selector_.transform(x)


def sklearn_frame(loader_name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)(as_frame=True)
        return bunch.frame
    return load


# What a CSV's delimiter may be when none is given: the sniffer chooses among these.
CSV_DELIMITERS = ",;\t|"
# How much of a CSV the delimiter is guessed from.
SNIFF_BYTES = 64 * 1024
# Tried in order when no encoding is given: UTF-8 (a byte-order mark dropped), then what Excel on
# Windows writes for Western languages (a superset of Latin-1's printable characters).
AUTO_ENCODINGS = ("utf-8-sig", "cp1252")
_SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
# A value written with a decimal comma ("3,14"), as in semicolon-separated files from European locales.
_DECIMAL_COMMA = re.compile(r"[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?")


def csv_separator(text: str) -> str:
    """`--csv-sep` as the one character pandas splits on; 'tab' and a typed backslash-t mean a tab."""
    sep = _SEP_NAMES.get(text.lower(), text)
    if len(sep) != 1 or sep in "\r\n\"":
        raise UserError(f"--csv-sep must be one character, such as ',' ';' '|' or 'tab', got {text!r}")
    return sep


def csv_encoding(text: str) -> str:
    """`--csv-encoding` as a codec name Python knows; plain UTF-8 also drops a byte-order mark."""
    try:
        info = codecs.lookup(text)
    except LookupError:
        raise UserError(f"unknown --csv-encoding {text!r}; give a text encoding such as utf-8, latin-1 or "
                        f"cp1252") from None
    if not _is_text_codec(info.name):
        raise UserError(f"--csv-encoding {text!r} is not a text encoding; give one such as utf-8, latin-1 or cp1252")
    return "utf-8-sig" if info.name == "utf-8" else info.name


def _is_text_codec(name: str) -> bool:
    """Whether a codec turns bytes into text: str.encode refuses the others (base64, zlib, rot13) by name."""
    try:
        "a".encode(name)
    except LookupError:
        return False
    except UnicodeError:  # a text codec that cannot write "a"
        pass
    return True


def check_csv_format(sep: str | None, encoding: str | None) -> None:
    """Check `--csv-sep` / `--csv-encoding` before anything is read or stored (a one-line UserError)."""
    if sep is not None:
        csv_separator(sep)
    if encoding is not None:
        csv_encoding(encoding)


def csv_frame(path: Path, sep: str | None = None, encoding: str | None = None) -> Callable[[], pd.DataFrame]:
    """A loader for a CSV file whose delimiter and encoding are detected unless given.

    Real CSVs come from spreadsheets in many locales: semicolons with decimal
    commas (Excel in much of Europe), tabs, Windows-1252 text, a UTF-8
    byte-order mark. The delimiter is guessed from the first 64 KiB among
    , ; tab and |; the text is read as UTF-8, else as Windows-1252. When
    that is still wrong the error names the option that fixes it.
    """
    def load() -> pd.DataFrame:
        if not path.exists():
            raise UserError(f"CSV file not found: {path}")
        try:
            with path.open("rb") as file:
                head = file.read(SNIFF_BYTES)
        except OSError as exc:
            raise UserError(f"CSV file {path} could not be read: {exc.strerror or exc}") from None
        if not head.strip():
            raise UserError(f"CSV file {path} is empty")
        encodings = [csv_encoding(encoding)] if encoding else _auto_encodings(head)
        delimiter = csv_separator(sep) if sep else sniff_delimiter(head.decode(encodings[0], errors="replace"))
        for tried in encodings:
            try:
                frame = pd.read_csv(path, sep=delimiter, encoding=tried)
                break
            except UnicodeDecodeError:
                continue
            except pd.errors.EmptyDataError:
                raise UserError(f"CSV file {path} is empty") from None
            except pd.errors.ParserError as exc:
                hint = "" if sep else f" (read as {_shown(delimiter)}-separated; if it is not, pass --csv-sep)"
                raise UserError(f"CSV file {path} could not be read{hint}: {_first_line(exc)}") from None
            except OSError as exc:
                raise UserError(f"CSV file {path} could not be read: {exc.strerror or exc}") from None
        else:
            if encoding:
                raise UserError(f"CSV file {path} is not {encoding} text; pass the file's encoding, e.g. "
                                f"--csv-encoding latin-1") from None
            raise UserError(f"CSV file {path} is neither UTF-8 nor Windows-1252 text; pass its encoding, e.g. "
                            f"--csv-encoding latin-1 (or utf-16, shift_jis)") from None
        return frame if delimiter == "," else _read_decimal_commas(frame)
    return load


def _auto_encodings(head: bytes) -> list[str]:
    """UTF-16 files say so in their first bytes; anything else is tried as UTF-8, then Windows-1252."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    return list(AUTO_ENCODINGS)


def sniff_delimiter(sample: str) -> str:
    """The delimiter of a CSV from its first lines: the sniffer's guess among , ; tab and |, else a count.

    The sniffer wants consistent counts per line; when it cannot decide (one
    column, ragged lines) the candidate that splits the header into the
    most fields wins, and a file none of them splits is read with commas.
    """
    if "\n" in sample:
        sample = sample[:sample.rindex("\n")]  # the sample's last line may be cut short
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return ","
    try:
        guess = csv.Sniffer().sniff("\n".join(lines[:200]), delimiters=CSV_DELIMITERS).delimiter
        if _fields(lines[0], guess) > 1:
            return guess
    except csv.Error:
        pass
    best = max(CSV_DELIMITERS, key=lambda d: _fields(lines[0], d))
    return best if _fields(lines[0], best) > 1 else ","


def _fields(line: str, delimiter: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter), []))


def _read_decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is a number written with a decimal comma become numbers."""
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.dropna().astype(str).str.strip()
        if (len(text) and text.str.contains(",", regex=False).any()
                and text.map(lambda v: bool(v) and _DECIMAL_COMMA.fullmatch(v) is not None).all()):
            frame[column] = pd.to_numeric(values.astype(str).str.strip().str.replace(",", ".", regex=False),
                                          errors="coerce").where(values.notna())
    return frame


def _shown(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
