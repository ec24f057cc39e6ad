"""Classic HPO baselines: thin adapters over Optuna samplers.

Every method runs the same loop on the same target, budget and seed, with
the target's default config as its first trial, so a comparison with LGT
measures the search strategy and nothing else. The samplers themselves are
defined once, in `lgt.methods`.
"""

from __future__ import annotations

import contextlib
import functools
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from lgt import leases, methods, reporting
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.outputs import check_folder, check_storage, file_writes, storage_writes
from lgt.runs import RunRequest, RunSpec, build_target, new_run_id
from lgt.settings import default_storage_url, run_path
from lgt.studies import (
    add_wall_time,
    claimed_trials,
    close_interrupted,
    create_study,
    load_study,
    open_storage,
    redact_url,
    refuse_existing_run,
    resume_command,
)
from lgt.worker import work
from tuning_targets import Config, Target


@dataclass(kw_only=True)
class BaselineRequest(RunRequest):
    """`resume` may be "" here: the latest run of this target, method and seed.

    With `resume` naming a run, `target` and `method` may be empty: the
    study knows them.
    """

    method: str
    config: dict[str, Any] | None = None
    create_only: bool = False  # make the study and queue the default config; `lgt worker`s run it

    def check(self) -> None:
        if not self.resume and (not self.target or not self.method):
            raise UserError("lgt baseline needs --target and --method (or --resume RUN_ID to continue a run)")
        if self.method:
            method = methods.get(self.method)
            if method.is_agents:
                raise UserError(f"{self.method} is tuned by the agents: run it with `lgt tune`")
        super().check()


def run_baseline(request: BaselineRequest, observer: RunObserver | None = None) -> dict[str, Any]:
    """Run (or resume) one baseline study and write its outputs; returns the summary.

    Every check (names, the data, where it writes, whether another process
    drives the run) comes before anything is created; the run is driven
    under a lease (`lgt.leases`), so a second `lgt baseline` or bench never
    drives it at the same time.
    """
    request.check()
    observer = observer or RunObserver()
    storage_url = request.storage or default_storage_url()
    check_storage(storage_url)
    create: Callable[[], optuna.Study] | None = None
    if request.resume is not None:
        storage = open_storage(storage_url)
        run_id = request.resume or latest_run(storage, request)
        found = load_study(storage, run_id)
        spec = RunSpec.from_study(found)
        method = methods.get(spec.method)
        if method.is_agents:
            raise UserError(f"run {run_id!r} is an LGT run ({spec.method}), not a baseline: continue it with "
                            f"`{resume_command(run_id, True, storage_url)}`")
        folder = request.out_dir or run_path(run_id)
        if not request.create_only:
            check_folder(folder)
            leases.check_free(found, _busy_hint(storage_url, run_id))
        target = build_target(spec)
        start_config = found.user_attrs["default_config"]
    else:
        if request.run_id:
            refuse_existing_run(storage_url, request.run_id)
        method = methods.get(request.method)
        budget = method.budget(request.trials)
        run_id = request.run_id or new_run_id(request.target, request.method, request.seed)
        spec = RunSpec.of(request, run_id, request.method, budget)
        folder = request.out_dir or run_path(run_id)
        if not request.create_only:
            check_folder(folder)
        target = build_target(spec)
        start_config = start_config_for(target, request.config)
        storage = open_storage(storage_url)
        create = functools.partial(_create, storage, spec, target, start_config, storage_url)

    sampler, pruner = method.make_sampler(target, spec.seed, spec.trials), method.make_pruner(target, spec.trials)
    if request.create_only:
        study = create() if create is not None else load_study(storage, spec.run_id)
        _queue_default(study, start_config)
        observer.on_message(f"study {spec.run_id!r} is ready for workers: lgt worker --storage URL "
                            f"--study {spec.run_id}")
        return {"study_name": spec.run_id, "storage": storage_url, "created_only": True}
    with leases.driving(storage_url, storage, spec.run_id, create=create,
                        hint=_busy_hint(storage_url, spec.run_id)):
        study = load_study(storage, spec.run_id, sampler, pruner)
        with storage_writes(storage_url, spec.run_id, agents=False):
            _queue_default(study, start_config)
            started = time.perf_counter()
            try:
                work(study, target, spec, observer)
            finally:
                with contextlib.suppress(Exception):  # a storage that just failed cannot take the wall time either
                    add_wall_time(study, time.perf_counter() - started)
    with file_writes(storage_url, folder):
        summary = reporting.write_run_files(storage_url, spec.run_id, folder)
    observer.on_run_end(summary)
    return summary


def _create(storage: optuna.storages.BaseStorage, spec: RunSpec, target: Target, start_config: Config,
            url: str) -> optuna.Study:
    study = create_study(storage, spec, target, url=url)
    study.set_user_attr("default_config", start_config)
    return study


def _queue_default(study: optuna.Study, start_config: Config) -> None:
    """Close what a crash left running, and queue the shared first config unless it holds a slot already."""
    close_interrupted(study)
    if not any(t.user_attrs.get("source") == "default" for t in claimed_trials(study)):
        study.enqueue_trial(start_config, user_attrs={"source": "default"})


def _busy_hint(url: str, run_id: str) -> str:
    return f"let it finish, or add a process to it with `lgt worker --storage {shlex.quote(redact_url(url))} " \
           f"--study {run_id}`"


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
