"""What a run is: its spec, the request that starts it, its name, and the checks on both.

Every command that runs trials (`baseline`, `tune`, `bench`, `worker`)
checks its numbers and names here, so a bad `--trials`, seed or run id is
the same one-line error whichever command it reached.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from lgt.errors import UserError
from lgt.options import OPTIONS, check_fields
from tuning_targets import (
    METRICS,
    Target,
    TrialRefused,
    check_csv_format,
    known_task,
    make_target,
    out_of_memory_reason,
    parse_models,
    takes_models,
    target_label,
)
from tuning_targets.metrics import metric_names

MAX_RUN_ID = 200  # a run id is one folder name; file systems allow 255 bytes, and files get suffixes
# A run id names a study and a folder under the results dir: letters, digits, '-', '_' and '.', no '..'.
_RUN_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_RUN_ID - 1}}}")
_HASH_CHARS = 8
# The model families of a tabular run stored before there were families: the MLP-only space it ran on.
MODELS_BEFORE_FAMILIES = "mlp"


@dataclass(frozen=True)
class RunSpec:
    """What identifies a run; stored on the study so a resume rebuilds the same thing."""

    run_id: str
    target: str
    method: str
    seed: int
    trials: int
    data_dir: str | None = None
    target_column: str | None = None
    task: str | None = None
    epoch_budget: int | None = None  # a budget in epochs (every method trains the same total); `trials` caps it too
    csv_sep: str | None = None  # a csv: target's delimiter and encoding, when given (default: detected)
    csv_encoding: str | None = None
    # A tabular target's model families, comma-separated in the space's order (None given: all of them);
    # kept as resolved, so a resume rebuilds the same space whatever the default becomes. None elsewhere.
    models: str | None = None
    metric: str | None = None  # what is tuned (None: accuracy or MAE); the study's `metric` attr is the one in effect

    def __post_init__(self) -> None:
        if takes_models(self.target):
            object.__setattr__(self, "models", ",".join(parse_models(self.models)))

    def to_attrs(self) -> dict[str, Any]:
        return dict(vars(self))

    def replace(self, **changes: Any) -> RunSpec:
        return RunSpec(**(self.to_attrs() | changes))

    @classmethod
    def of(cls, request: RunRequest, run_id: str, method: str, trials: int) -> RunSpec:
        """A new run's spec: the request's target and options under this name, method and trial budget."""
        given = {f.name: getattr(request, f.name) for f in fields(cls) if f.name not in ("run_id", "method", "trials")}
        return cls(run_id=run_id, method=method, trials=trials, **given)

    @classmethod
    def from_study(cls, study: optuna.Study) -> RunSpec:
        """The spec a study was created with; refused unless its name is one lgt could have written.

        The name becomes a folder (`results/<run-id>/`), and a shared
        database may hold studies made by anyone, so a name with '/' or
        '..', or a `run_id` attr that differs from the study's name, is
        refused here, before anything reads or writes by it.

        A tabular run stored before model families existed (no `models`
        attr) ran the MLP alone, and is rebuilt so.
        """
        check_run_id(study.study_name)
        attrs = study.user_attrs
        values = {f.name: attrs[f.name] for f in fields(cls) if f.name in attrs}
        if "models" not in attrs:
            values["models"] = MODELS_BEFORE_FAMILIES
        try:
            spec = cls(**values)
        except TypeError:
            raise UserError(f"study {study.study_name!r} was not written by lgt (its attributes are missing)") from None
        if spec.run_id != study.study_name:
            raise UserError(f"study {study.study_name!r} says its run id is {spec.run_id!r}; it was not written by lgt")
        return spec


@dataclass(kw_only=True)
class RunRequest:
    """What every run command takes: the target, the budget, where to store it."""

    target: str
    trials: int
    seed: int = OPTIONS["seed"].field()
    storage: str | None = OPTIONS["storage"].field()
    data_dir: str | None = OPTIONS["data_dir"].field()
    target_column: str | None = OPTIONS["target_column"].field()
    task: str | None = OPTIONS["task"].field()
    resume: str | None = None
    epoch_budget: int | None = OPTIONS["epoch_budget"].field()  # stop once this many epochs were trained, in all
    run_id: str | None = None  # a fixed name (the bench names its runs); default: target-method-seed-time
    out_dir: Path | None = None  # where the run's files go; default results/<run-id>/
    csv_sep: str | None = OPTIONS["csv_sep"].field()  # for csv: targets; default: detected from the file
    csv_encoding: str | None = OPTIONS["csv_encoding"].field()  # for csv: targets; default: UTF-8, else cp1252
    models: str | None = OPTIONS["models"].field()  # a tabular target's model families, or "all" (the default)
    metric: str | None = OPTIONS["metric"].field()  # what is tuned; default accuracy or MAE by task

    def check(self) -> None:
        """The checks every run request passes before anything is read or stored."""
        if not self.resume:
            check_trials(self.trials)
        check_fields(self)  # the seed, the epoch budget, the task and those of a subclass
        if self.run_id is not None:
            check_run_id(self.run_id)
        if self.resume:
            check_run_id(self.resume)
        check_csv_options(self.csv_sep, self.csv_encoding, [self.target] if self.target else [])
        check_models_and_metric(self.models, self.metric, [self.target] if self.target else [], task=self.task)


def check_csv_options(sep: str | None, encoding: str | None, targets: list[str]) -> None:
    """`--csv-sep` and `--csv-encoding` are well formed, and some target is a CSV for them to apply to."""
    if sep is None and encoding is None:
        return
    given = "--csv-sep" if sep is not None else "--csv-encoding"
    if targets and not any(t.startswith("csv:") for t in targets):
        raise UserError(f"{given} applies to csv:PATH targets only")
    check_csv_format(sep, encoding)


def check_models_and_metric(models: str | None, metric: str | None, targets: list[str], *,
                            task: str | None = None) -> None:
    """`--models` names model families and some target is tabular; `--metric` fits every target whose task is known.

    A CSV's task is known once its data is read (or from `task`), so its
    metric is checked then, when the target is built.
    """
    if models is not None:
        parse_models(models)
        if targets and not any(takes_models(t) for t in targets):
            raise UserError(f"--models applies to tabular targets (iris, wine, breast_cancer, diabetes, csv:PATH), "
                            f"not {', '.join(target_label(t) for t in targets)}")
    if metric is None:
        return
    info = METRICS.get(metric)
    if info is None:
        raise UserError(f"--metric: unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")
    for target in targets:
        known = task or known_task(target)
        if known is not None and known != info.task:
            raise UserError(f"--metric {metric} is for {info.task}; {target_label(target)} is {known}: choose one "
                            f"of {', '.join(metric_names(known))}")  # type: ignore[arg-type]


def check_trials(trials: int) -> int:
    OPTIONS["trials"].check(trials)
    return trials


def check_epoch_budget(epochs: int | None) -> int | None:
    OPTIONS["epoch_budget"].check(epochs)
    return epochs


def check_seed(seed: int) -> int:
    OPTIONS["seed"].check(seed)
    return seed


def check_run_id(name: str) -> str:
    """A run id that is safe as a study name and as one folder name: no '/', no '..'."""
    if not _RUN_ID.fullmatch(name) or ".." in name:
        raise UserError(f"run id {name!r} is not a safe name: use letters, digits, '-', '_' and '.' "
                        f"(no '/', no '..', at most 200 characters)")
    return name


def slug(text: str, limit: int | None = None) -> str:
    """`text` reduced to letters, digits and '_', for names built from it; at most `limit` characters.

    A longer slug keeps its start and ends in a hash of the whole text, so
    two long CSV names that differ only at the end still name different runs,
    and the same name always gives the same slug (a bare `--resume` finds it).
    """
    out = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "run"
    if limit is None or len(out) <= limit:
        return out
    digest = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:_HASH_CHARS]
    return f"{out[:max(1, limit - _HASH_CHARS - 1)].rstrip('_')}-{digest}"


def new_run_id(target: str, method: str, seed: int) -> str:
    """`<target>-<method>-s<seed>-<time>`, always a valid run id: a long target name is shortened with a hash."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    tail = f"-{method}-s{seed}-{stamp}"
    return check_run_id(f"{slug(target_label(target), MAX_RUN_ID - len(tail))}{tail}")


def bench_study_name(bench_id: str, target: str, method: str, seed: int) -> str:
    """A bench run's study: `<bench-id>.<target>.<method>.s<seed>`; a long target name is shortened to fit."""
    tail = f".{method}.s{seed}"
    return f"{bench_id}.{slug(target_label(target), MAX_RUN_ID - len(bench_id) - 1 - len(tail))}{tail}"


def build_target(spec: RunSpec) -> Target:
    """Make the run's target and read its data now, so bad input fails before anything is stored."""
    target = make_target(spec.target, data_dir=Path(spec.data_dir) if spec.data_dir else None,
                         target_column=spec.target_column, task=spec.task,  # type: ignore[arg-type]
                         csv_sep=spec.csv_sep, csv_encoding=spec.csv_encoding, models=spec.models,
                         metric=spec.metric)
    try:
        target.prepare(target.default_config)
    except (TrialRefused, MemoryError) as exc:  # the data alone is too big for this machine, before any tuning
        reason = str(exc) if isinstance(exc, TrialRefused) else out_of_memory_reason(exc)
        raise UserError(f"{target_label(spec.target)}: even the default config cannot train: {reason}") from None
    return target
