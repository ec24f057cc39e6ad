"""Workers: processes that pull trials from a shared study and run them.

Any number of workers, on one machine or many, may work on one study in one
storage (PostgreSQL for several machines). The storage is the only thing
they share; there is no scheduler of our own. Each worker:

- claims a slot of the budget before it trains: a trial counts against the
  budget from the moment it is asked (RUNNING), so N workers finish exactly
  the budget between them. Two workers that ask in the same instant may both
  get a trial past the budget; the later one (by trial number) releases its
  trial before training (FAIL with user attr ``surplus``; never counted);
- beats a heartbeat on the storage while it trains; a trial whose worker
  died is failed once its heartbeat is older than the grace period, and
  Optuna's retry callback queues the same config again for any worker;
- in an LGT study only runs the trials the driver queued (the Advisor's
  proposals); in a baseline study asks the study's sampler.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lgt import methods, optuna_private
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.runs import RunSpec, build_target, check_run_id
from lgt.studies import (
    budget_left,
    budget_spent,
    claimed_trials,
    counted_trials,
    fail_stale,
    finish_trial,
    load_study,
    open_storage,
    release,
    trial_attrs,
)
from tuning_targets import Config, EpochRecord, Reporter, Target, TrialResult
from tuning_targets.stepping import run_to_end

POLL_SECONDS = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Record a heartbeat for the trial every interval while the block runs."""
    if not optuna_private.heartbeat_enabled(study):
        yield
        return
    interval = optuna_private.heartbeat_interval(study)
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed beat is retried; the trial goes on
                optuna_private.record_heartbeat(study, trial)
            if stop.wait(interval):
                return

    optuna_private.record_heartbeat(study, trial)
    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def work(study: optuna.Study, target: Target, spec: RunSpec, observer: RunObserver, *,
         queue_only: bool = False, stop: Callable[[], bool] = lambda: False,
         poll: float = POLL_SECONDS) -> int:
    """Run trials of `study` until it holds `spec.trials` counted trials; returns how many this worker ran.

    `queue_only` (LGT studies): run only queued trials and wait for the
    driver between rounds, never sample. Ctrl-C fails the running trial as
    interrupted (not counted) and re-raises.
    """
    ran = 0
    observer.on_run_start(spec.run_id, spec.trials, len(counted_trials(study)), target.metric)
    waiting_said = False
    while not stop():
        fail_stale(study)
        done = len(counted_trials(study))
        if budget_spent(study, spec):
            break
        claimed = claimed_trials(study)
        queued = any(t.state == TrialState.WAITING for t in claimed)
        if (queue_only and not queued) or (not queued and len(claimed) >= spec.trials):
            if not waiting_said:
                running = sum(t.state == TrialState.RUNNING for t in claimed)
                observer.on_message(f"waiting: {done}/{spec.trials} done, {running} running elsewhere"
                                    + (", no proposals queued yet" if queue_only else ""))
                waiting_said = True
            time.sleep(poll)
            continue
        waiting_said = False
        trial = study.ask()
        # Define-by-run: only the knobs the trial's own values make active are asked for (all of them on a
        # space without conditions, in the same order `ask(space.distributions())` asked them).
        config = target.space.suggest(trial)
        if (queue_only and not optuna_private.came_from_queue(trial)) or _past_budget(study, trial.number, spec.trials):
            release(study, trial)  # lost a race for the last slot (or for the queued proposal)
            continue
        ran += _run_one(study, trial, config, target, spec, observer, len(counted_trials(study)) + 1)
    return ran


def _past_budget(study: optuna.Study, number: int, budget: int) -> bool:
    slots = sorted(t.number for t in claimed_trials(study))
    return number in slots and slots.index(number) >= budget


def _run_one(study: optuna.Study, trial: optuna.Trial, config: Config, target: Target, spec: RunSpec,
             observer: RunObserver, ordinal: int) -> int:
    source = str(trial.user_attrs.get("source") or spec.method)
    trial.set_user_attr("worker", worker_name())
    observer.on_trial_start(trial.number, ordinal, spec.trials, config)
    _, epochs_left = budget_left(study, spec)
    prune = not isinstance(study.pruner, optuna.pruners.NopPruner)
    try:
        with heartbeat(study, trial):
            result, pruned = train_trial(target, config, spec.seed, observer.epoch_reporter(), epochs_left,
                                         trial if prune else None)
    except BaseException:
        trial.set_user_attr("interrupted", True)
        study.tell(trial, state=TrialState.FAIL)
        raise
    attrs = trial_attrs(config, result, spec.method, source)
    if pruned:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("pruned_at_epoch", len(result.history))
        study.tell(trial, state=TrialState.PRUNED)
    else:
        finish_trial(study, trial, result, attrs)
    observer.on_trial_end(trial.number, result)
    return 1


def train_trial(target: Target, config: Config, seed: int, reporter: Reporter, epochs_left: float,
                trial: optuna.Trial | None) -> tuple[TrialResult, bool]:
    """Train one config, stopping at the epoch budget's end or when `trial`'s pruner says so.

    Returns the result (its best epoch so far, for a stopped run) and
    whether the pruner stopped it. Without a budget or a pruner this is
    `Target.run`.

    Budget and pruner count the run's steps, whatever the model family: an
    MLP's epochs, a hist_gb run's stages of boosting iterations, and the one
    step of a random forest or a linear model, which a pruner therefore
    never stops (it reports once, when the model is already trained) and
    which costs one step of the epoch budget.
    """
    if trial is None:
        return target.run(config, reporter, seed=seed, max_steps=epochs_left), False
    run = target.start_run(config, seed=seed)
    pruned = False

    def prune(record: EpochRecord) -> bool:
        nonlocal pruned
        trial.report(record.val_metric, record.epoch)
        pruned = not run.done and trial.should_prune()
        return pruned

    return run_to_end(run, reporter, epochs_left, stop=prune), pruned


@dataclass(kw_only=True)
class WorkerRequest:
    storage: str
    study: str
    data_dir: str | None = None  # where this machine keeps mnist/cifar10, if not where the creator did


def run_worker(request: WorkerRequest, observer: RunObserver | None = None) -> dict[str, Any]:
    """Join a study and work until its budget is spent; returns what this worker did."""
    observer = observer or RunObserver()
    check_run_id(request.study)  # a study name is a folder name elsewhere; refuse unsafe ones before connecting
    storage = open_storage(request.storage)
    spec = RunSpec.from_study(load_study(storage, request.study))
    if request.data_dir:
        spec = spec.replace(data_dir=request.data_dir)
    if spec.trials < 1:
        raise UserError(f"study {request.study!r} has no trial budget")
    method = methods.get(spec.method)
    target = build_target(spec)
    agents = method.is_agents
    sampler = None if agents else method.make_sampler(target, spec.seed, spec.trials, worker=os.getpid())
    study = load_study(storage, request.study, sampler, None if agents else method.make_pruner(target, spec.trials))
    observer.on_message(f"worker {worker_name()} on study {spec.run_id!r} ({spec.method}, {spec.target}, "
                        f"budget {spec.trials})")
    ran = work(study, target, spec, observer, queue_only=agents)
    done = len(counted_trials(study))
    return {"study_name": spec.run_id, "trials_run_here": ran, "trials_done": done, "budget": spec.trials,
            "data_dir": str(Path(spec.data_dir)) if spec.data_dir else None}
