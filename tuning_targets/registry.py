"""Names users type (`digits`, `iris`, `csv:PATH`) mapped to targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lgt.errors import UserError
from tuning_targets.base import Target
from tuning_targets.images import Cifar10Target, DigitsTarget, MnistTarget
from tuning_targets.synthetic import parse_synthetic
from tuning_targets.tabular import TabularTarget, csv_frame, sklearn_frame
from tuning_targets.trainer import Task

IMAGE_TARGETS: dict[str, type[Target]] = {"digits": DigitsTarget, "mnist": MnistTarget, "cifar10": Cifar10Target}
SKLEARN_TARGETS: dict[str, tuple[str, str, Task, str]] = {
    "iris": ("load_iris", "target", "classification", "Iris flowers: 150 rows, 4 numeric features, 3 classes"),
    "wine": ("load_wine", "target", "classification", "Wine cultivars: 178 rows, 13 numeric features, 3 classes"),
    "breast_cancer": ("load_breast_cancer", "target", "classification",
                      "Breast cancer diagnosis: 569 rows, 30 numeric features, 2 classes"),
    "diabetes": ("load_diabetes", "target", "regression",
                 "Diabetes progression: 442 rows, 10 numeric features, regression"),
}
TARGET_NAMES = (*IMAGE_TARGETS, *SKLEARN_TARGETS, "csv:PATH", "synthetic:SECONDS")


def make_target(name: str, *, data_dir: Path | None = None, target_column: str | None = None,
                task: Task | None = None, split_seed: int = 0, csv_sep: str | None = None,
                csv_encoding: str | None = None, models: str | Sequence[str] | None = None,
                metric: str | None = None) -> Target:
    """Build the target a user named; raises UserError for names and options that do not fit.

    `csv_sep` and `csv_encoding` apply to csv: targets (detected when not
    given) and are ignored by the others, as `target_column` is, so one bench
    can mix CSVs and built-in sets. So is `models`, the model families of a
    tabular space (default all; "mlp" is the MLP-only space of before),
    which image and synthetic targets ignore. `metric` (default accuracy or
    MAE) must fit the target's task.
    """
    if name in IMAGE_TARGETS:
        if task not in (None, "classification"):
            raise UserError(f"target {name!r} is image classification; --task {task} does not apply")
        return IMAGE_TARGETS[name](split_seed=split_seed, data_dir=data_dir, metric=metric)  # type: ignore[call-arg]
    if name in SKLEARN_TARGETS:
        loader, column, default_task, description = SKLEARN_TARGETS[name]
        return TabularTarget(name, sklearn_frame(loader), column, task=task or default_task,
                             description=description, split_seed=split_seed, models=models, metric=metric)
    if name.startswith("csv:"):
        path = Path(name[4:])
        if not target_column:
            raise UserError("a csv: target needs --target-column NAME")
        return TabularTarget(name, csv_frame(path, csv_sep, csv_encoding), target_column, task=task,
                             description=f"CSV file {path}", split_seed=split_seed, models=models, metric=metric)
    if name == "synthetic" or name.startswith("synthetic:"):
        target = parse_synthetic(name, split_seed=split_seed)
        if metric not in (None, target.metric):
            raise UserError(f"target {name!r} scores accuracy only; --metric {metric} does not apply")
        return target
    raise UserError(f"unknown target {name!r}; choose one of: {', '.join(TARGET_NAMES)}")


def check_target_name(name: str) -> str:
    """`name` if it names a target family (without reading any data); a one-line UserError otherwise."""
    if name in IMAGE_TARGETS or name in SKLEARN_TARGETS or name == "synthetic" or name.startswith(("csv:", "synthetic:")):
        return name
    raise UserError(f"unknown target {name!r}; choose one of: {', '.join(TARGET_NAMES)}")


def takes_models(name: str) -> bool:
    """Whether a target name is tabular (a built-in table or a CSV), whose space has model families."""
    return name in SKLEARN_TARGETS or name.startswith("csv:")


def known_task(name: str) -> Task | None:
    """The task of a target, when its name alone says it (a CSV's is inferred from its data: None)."""
    if name in IMAGE_TARGETS or name == "synthetic" or name.startswith("synthetic:"):
        return "classification"
    if name in SKLEARN_TARGETS:
        return SKLEARN_TARGETS[name][2]
    return None


def target_label(name: str) -> str:
    """How a target is shown to people: a CSV by its file's stem, never its full local path.

    The path stays in the run's metadata (the study's `target` attr), where
    a resume or a worker needs it; tables, plot names and reports use this.
    """
    if name.startswith("csv:"):
        return Path(name[4:]).stem or "csv"
    return name
