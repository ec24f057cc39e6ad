"""Classic HPO baselines: thin adapters over Optuna samplers.

Every method runs the same loop on the same target, budget and seed, with
the target's default config as its first trial, so a comparison with LGT
measures the search strategy and nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.outputs import write_run_outputs
from lgt.report import write_run_report
from lgt.settings import default_storage_url, new_run_id, run_dir
from lgt.studies import (RunRequest, RunSpec, add_wall_time, claimed_trials, close_interrupted, create_study, load_study, open_storage)
from lgt.worker import work
from tuning_targets import Config, Target, make_target

METHODS = ("tpe", "gp", "grid", "random", "default", "tpe-median", "tpe-hyperband")
# Methods that stop poor trials inside their run, the classical counterpart of `lgt tune --adapt epoch`.
PRUNED_METHODS = ("tpe-median", "tpe-hyperband")


def startup_trials(budget: int) -> int:
    """Random trials before a model-based sampler starts modelling.

    Optuna's default of 10 would leave TPE and GP almost no modelled
    trials on the small budgets used here; a third of the budget keeps
    them honest on short runs and equals the default from 30 trials up.
    """
    return max(2, min(10, budget // 3))


def make_pruner(method: str, target: Target, budget: int) -> optuna.pruners.BasePruner:
    """Median: stop a trial whose epoch is below the median of earlier trials at that epoch.

    Hyperband: successive halving over epochs, from 1 to the space's most
    epochs, in brackets. Neither prunes in the first epoch of a trial; the
    median waits for the same startup trials TPE does.
    """
    if method == "tpe-median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials(budget), n_warmup_steps=1)
    if method == "tpe-hyperband":
        knob = target.space.knobs.get("epochs")
        high = int(getattr(knob, "high", 0) or target.default_config.get("epochs", 3))
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(2, high), reduction_factor=3)
    return optuna.pruners.NopPruner()


def make_sampler(method: str, target: Target, seed: int, budget: int) -> optuna.samplers.BaseSampler:
    """The sampler for `method`.

    The grid spans the first knobs of the target's space (most influential
    first), each at a few levels, until it holds at least `budget` points;
    the rest stay at their defaults. GridSampler visits the points in a
    seeded random order, so a truncated grid is an unbiased subset of it.
    """
    if method in ("tpe", *PRUNED_METHODS):
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(budget), multivariate=True)
    if method == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(budget))
    if method == "grid":
        return optuna.samplers.GridSampler(target.space.grid(target.default_config, budget), seed=seed)  # type: ignore[arg-type]
    if method in ("random", "default"):
        return optuna.samplers.RandomSampler(seed=seed)
    raise UserError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")


@dataclass(kw_only=True)
class BaselineRequest(RunRequest):
    """`resume` may be "" here: the latest run of this target, method and seed."""

    method: str
    config: dict[str, Any] | None = None
    create_only: bool = False  # make the study and queue the default config; `lgt worker`s run it


def check_request(request: BaselineRequest) -> None:
    if request.method not in METHODS:
        raise UserError(f"unknown method {request.method!r}; choose one of: {', '.join(METHODS)}")
    if request.trials < 1:
        raise UserError(f"--trials must be at least 1, got {request.trials}")
    if request.epoch_budget is not None and request.epoch_budget < 1:
        raise UserError(f"--epoch-budget must be at least 1, got {request.epoch_budget}")


def build_target(spec: RunSpec) -> Target:
    """Make the target and read its data now, so bad input fails before anything is stored."""
    target = make_target(spec.target, data_dir=Path(spec.data_dir) if spec.data_dir else None,
                         target_column=spec.target_column, task=spec.task)  # type: ignore[arg-type]
    target.load_splits(target.default_config)
    return target


def run_baseline(request: BaselineRequest, observer: RunObserver | None = None) -> dict[str, Any]:
    """Run (or resume) one baseline study and write its outputs; returns the summary."""
    check_request(request)
    observer = observer or RunObserver()
    budget = 1 if request.method == "default" else request.trials
    storage_url = request.storage or default_storage_url()
    if request.resume is not None:
        storage = open_storage(storage_url)
        run_id = request.resume or latest_run(storage, request)
        spec = RunSpec.from_study(load_study(storage, run_id))
        target = build_target(spec)
        study = load_study(storage, run_id, make_sampler(spec.method, target, spec.seed, spec.trials),
                           make_pruner(spec.method, target, spec.trials))
        start_config = study.user_attrs["default_config"]
    else:
        run_id = request.run_id or new_run_id(request.target, request.method, request.seed)
        spec = RunSpec(run_id, request.target, request.method, request.seed, budget, request.data_dir,
                       request.target_column, request.task, request.epoch_budget)
        target = build_target(spec)
        start_config = start_config_for(target, request.config)
        storage = open_storage(storage_url)
        study = create_study(storage, spec, target, make_sampler(spec.method, target, spec.seed, budget),
                             make_pruner(spec.method, target, budget))
        study.set_user_attr("default_config", start_config)
    close_interrupted(study)
    if not any(t.user_attrs.get("source") == "default" for t in claimed_trials(study)):
        study.enqueue_trial(start_config, user_attrs={"source": "default"})
    if request.create_only:
        observer.on_message(f"study {spec.run_id!r} is ready for workers: lgt worker --storage URL "
                            f"--study {spec.run_id}")
        return {"study_name": spec.run_id, "storage": storage_url, "created_only": True}
    started = time.perf_counter()
    try:
        work(study, target, spec, observer)
    finally:
        add_wall_time(study, time.perf_counter() - started)
    folder = request.out_dir or run_dir(spec.run_id)
    summary = write_run_outputs(study, storage_url, folder)
    summary |= {"run_dir": str(folder), "report": str(write_run_report(storage_url, spec.run_id, folder))}
    observer.on_run_end(summary)
    return summary


def start_config_for(target: Target, override: dict[str, Any] | None) -> Config:
    if not override:
        return target.default_config
    return target.space.validate(override, base=target.default_config, strict=True).config


def latest_run(storage: optuna.storages.BaseStorage, request: BaselineRequest) -> str:
    """The newest run of this target, method and seed, for a bare `--resume`."""
    stem = new_run_id(request.target, request.method, request.seed).rsplit("-", 2)[0] + "-"
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                   if s.study_name.startswith(stem))
    if not names:
        raise UserError(f"no earlier {request.method} run of {request.target} with seed {request.seed} to resume "
                        f"in this storage")
    return names[-1]
