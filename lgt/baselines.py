"""Classic HPO baselines: thin adapters over Optuna samplers.

Every method runs the same loop on the same target, budget and seed, with
the target's default config as its first trial, so a comparison with LGT
measures the search strategy and nothing else. The samplers themselves are
defined once, in `lgt.methods`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import optuna

from lgt import methods, reporting
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.runs import RunRequest, RunSpec, build_target, new_run_id
from lgt.settings import default_storage_url, run_dir
from lgt.studies import (
    add_wall_time,
    claimed_trials,
    close_interrupted,
    create_study,
    load_study,
    open_storage,
    refuse_existing_run,
)
from lgt.worker import work
from tuning_targets import Config, Target


@dataclass(kw_only=True)
class BaselineRequest(RunRequest):
    """`resume` may be "" here: the latest run of this target, method and seed."""

    method: str
    config: dict[str, Any] | None = None
    create_only: bool = False  # make the study and queue the default config; `lgt worker`s run it

    def check(self) -> None:
        method = methods.get(self.method)
        if method.is_agents:
            raise UserError(f"{self.method} is tuned by the agents: run it with `lgt tune`")
        super().check()


def run_baseline(request: BaselineRequest, observer: RunObserver | None = None) -> dict[str, Any]:
    """Run (or resume) one baseline study and write its outputs; returns the summary."""
    request.check()
    observer = observer or RunObserver()
    method = methods.get(request.method)
    storage_url = request.storage or default_storage_url()
    if request.resume is not None:
        storage = open_storage(storage_url)
        run_id = request.resume or latest_run(storage, request)
        spec = RunSpec.from_study(load_study(storage, run_id))
        method = methods.get(spec.method)
        if method.is_agents:
            raise UserError(f"run {run_id!r} is an LGT run ({spec.method}), not a baseline: continue it with "
                            f"`lgt tune --resume {run_id}`")
        target = build_target(spec)
        study = load_study(storage, run_id, method.make_sampler(target, spec.seed, spec.trials),
                           method.make_pruner(target, spec.trials))
        start_config = study.user_attrs["default_config"]
    else:
        if request.run_id:
            refuse_existing_run(storage_url, request.run_id)
        budget = method.budget(request.trials)
        run_id = request.run_id or new_run_id(request.target, request.method, request.seed)
        spec = RunSpec(run_id, request.target, request.method, request.seed, budget, request.data_dir,
                       request.target_column, request.task, request.epoch_budget, request.csv_sep,
                       request.csv_encoding)
        target = build_target(spec)
        start_config = start_config_for(target, request.config)
        storage = open_storage(storage_url)
        study = create_study(storage, spec, target, method.make_sampler(target, spec.seed, budget),
                             method.make_pruner(target, budget))
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
    summary = reporting.write_run_files(storage_url, spec.run_id, folder)
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
