"""Optuna study storage: every trial of every method lands here.

A study is one run (one method on one target with one seed). Its user
attrs say how to rebuild the target and the budget, so `--resume` and
`lgt report` need nothing but the storage. Each trial carries its config,
per-epoch history, method and source as user attrs, which is what
optuna-dashboard shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shlex
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from lgt import environment, methods, optuna_private
from lgt.direction import Direction, best_of, direction_of
from lgt.errors import UserError
from lgt.runs import RunSpec
from lgt.settings import default_storage_url, results_dir
from tuning_targets import Config, Target, TrialResult, target_label

# Workers prove they are alive by a heartbeat on the storage; a trial whose
# heartbeat is older than the grace period is failed and queued again.
HEARTBEAT_ENV = environment.HEARTBEAT_SECONDS.name
DEFAULT_HEARTBEAT_SECONDS = 10
MAX_RETRIES = 3


def heartbeat_seconds() -> int:
    return environment.HEARTBEAT_SECONDS.whole_number("seconds") or DEFAULT_HEARTBEAT_SECONDS


def sqlalchemy_url(url: str) -> str:
    """`postgresql://` as SQLAlchemy should drive it: with psycopg 3, the driver we ship."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def libpq_url(url: str) -> str | None:
    """The same database as a libpq URL (for LangGraph's PostgresSaver); None if not PostgreSQL."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+")[0] in ("postgresql", "postgres"):
        return "postgresql://" + rest
    return None


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open (and create if needed) an Optuna storage, as a one-line error if it fails.

    Database storages get heartbeats and Optuna's stale-trial retry, so a
    trial whose worker died (SIGKILL, a lost machine) is run again by another
    worker instead of being lost or counted. A new SQLite file is created
    under a lock (`sqlite_creation_lock`): two commands started at once on
    the same new file would otherwise both create its tables, and one fails.
    """
    try:
        if "://" in url and not url.startswith(("redis", "grpc")):
            interval = heartbeat_seconds()
            engine = {"pool_pre_ping": True} if url.startswith(("postgres", "mysql")) else None
            with warnings.catch_warnings(), sqlite_creation_lock(url):
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
                return optuna.storages.RDBStorage(sqlalchemy_url(url), engine_kwargs=engine,
                                                  heartbeat_interval=interval, grace_period=3 * interval,
                                                  heartbeat_stale_trial_callback=retry)
        return optuna.storages.get_storage(url)
    except Exception as exc:  # noqa: BLE001 - any driver error means the URL does not open
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"storage {redact_url(url)} does not open: {detail}") from None


def sqlite_file(url: str | None) -> Path | None:
    """The file behind an SQLite URL; None for other databases, in-memory SQLite and no URL.

    The one place an SQLite URL becomes a path (leases, outputs, artifacts, the sampler's checkpoints all ask here).
    """
    if url is None or not url.startswith("sqlite"):
        return None
    try:
        database = sqlalchemy.engine.make_url(url).database
    except sqlalchemy.exc.ArgumentError:
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


@contextlib.contextmanager
def sqlite_creation_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock on the SQLite file's folder while Optuna opens (and maybe creates) it.

    Optuna creates the schema with `CREATE TABLE` statements that each check
    for the table first; two processes opening the same new file at once
    both see no tables and the second fails with "table ... already exists"
    (about one time in four with two `lgt baseline` runs). The lock is
    `flock` on the folder itself rather than on a `.lock` file beside the
    database, so it leaves nothing behind. It is held only while the
    storage opens (milliseconds for an existing file), never while trials
    run. The default storage's folder (the results dir) is created here,
    only when a run actually opens the storage, so a command that fails on
    its input leaves no empty results folder.
    """
    path = sqlite_file(url)
    if path is None:
        yield
        return
    folder = path.parent
    if folder.resolve() == results_dir().resolve():
        folder.mkdir(parents=True, exist_ok=True)
    with folder_lock(folder):
        yield


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive `flock` on a folder while the block runs; none if the folder cannot be opened.

    Not re-entrant: a process that holds it and asks again waits for itself.
    """
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # no such folder: SQLite will say so in its own words
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a message."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        creds, _, host = tail.rpartition("@")
        if ":" in creds:
            return f"{head}://{creds.split(':', 1)[0]}:***@{host}"
    return url


class RunExists(UserError):
    """A new run's id is taken in the storage (perhaps by another process an instant ago)."""


def create_study(storage: optuna.storages.BaseStorage, spec: RunSpec, target: Target,
                 sampler: optuna.samplers.BaseSampler | None = None,
                 pruner: optuna.pruners.BasePruner | None = None, url: str | None = None) -> optuna.Study:
    """A new study for a new run; a run id the storage already holds is `RunExists` saying how to resume it.

    `url` is the storage as the user named it, for the resume command the message prints.
    """
    try:
        study = optuna.create_study(storage=storage, study_name=spec.run_id, sampler=sampler,
                                    pruner=pruner or optuna.pruners.NopPruner(), direction=target.direction)
    except optuna.exceptions.DuplicatedStudyError:
        raise RunExists(run_exists_message(storage, spec.run_id, url)) from None
    for key, value in spec.to_attrs().items():
        study.set_user_attr(key, value)
    study.set_user_attr("metric", target.metric)
    study.set_user_attr("target_task", target.task)  # the task in effect (RunSpec.task is only an override)
    study.set_user_attr("space", json.loads(target.space.to_json()))
    study.set_user_attr("default_config", target.default_config)
    return study


def refuse_existing_run(url: str, run_id: str) -> None:
    """Fail early, as one line, when a new run's `--run-id` is taken, before a model starts or data is read.

    An SQLite file that does not exist yet holds no run, and is not created
    here. `create_study` checks again, for a run created in between.
    """
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return
    storage = open_storage(url)
    if run_id in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        raise RunExists(run_exists_message(storage, run_id, url))


def run_exists_message(storage: optuna.storages.BaseStorage, run_id: str, url: str | None = None) -> str:
    """Why a new run cannot take `run_id`, and the command that continues the run that has it."""
    try:
        attrs = optuna.load_study(study_name=run_id, storage=storage).user_attrs
    except KeyError:  # deleted in between: say it generally
        attrs = {}
    method = methods.find(str(attrs.get("method", "")))
    what = f" ({attrs.get('method')} on {target_label(str(attrs.get('target')))})" if method else ""
    if method is None:
        how = "it was not made by lgt, so choose another --run-id"
    else:
        how = f"continue it with `{resume_command(run_id, method.is_agents, url)}`, or choose another --run-id"
    return f"run {run_id!r} already exists in this storage{what}; {how}"


def resume_command(run_id: str, agents: bool, url: str | None = None) -> str:
    """The command that continues a run, as a user can paste it: `--storage` too unless it is the default."""
    command = f"lgt {'tune' if agents else 'baseline'} --resume {shlex.quote(run_id)}"
    if url and url != default_storage_url():
        command += f" --storage {shlex.quote(redact_url(url))}"
    return command


def load_study(storage: optuna.storages.BaseStorage, run_id: str,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    try:
        # Optuna's default pruner is the median one; ours prune only when the method says so.
        return optuna.load_study(study_name=run_id, storage=storage, sampler=sampler,
                                 pruner=pruner or optuna.pruners.NopPruner())
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        hint = f"; runs in this storage: {', '.join(names[-5:])}" if names else "; the storage holds no runs"
        raise UserError(f"no run {run_id!r} in the storage{hint}") from None


def is_counted(trial: FrozenTrial) -> bool:
    """Whether a trial spent budget: completed, pruned, or failed by the trial itself (e.g. diverged).

    A trial left RUNNING by a crash, failed because it was interrupted, or
    released as surplus did not finish and is not counted.
    """
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("status") == "failed")


def epochs_trained(trial: FrozenTrial) -> int:
    """Epochs a trial trained: both branches of every A/B check count, and a pruned trial's epochs."""
    attrs = trial.user_attrs
    return int(attrs.get("epochs_trained") or len(attrs.get("history") or []))


def epochs_used(study: optuna.Study) -> int:
    return sum(epochs_trained(t) for t in counted_trials(study))


def budget_left(study: optuna.Study, spec: RunSpec) -> tuple[int, float]:
    """(trials, epochs) left; epochs are unlimited without an epoch budget."""
    trials = spec.trials - len(counted_trials(study))
    epochs = math.inf if spec.epoch_budget is None else spec.epoch_budget - epochs_used(study)
    return trials, epochs


def budget_spent(study: optuna.Study, spec: RunSpec) -> bool:
    trials, epochs = budget_left(study, spec)
    return trials <= 0 or epochs <= 0


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if is_counted(t)]


def claimed_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials holding a slot of the budget: counted, running, or queued to run."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.RUNNING, TrialState.WAITING) or is_counted(t)]


def release(study: optuna.Study, trial: optuna.Trial) -> None:
    """Give back a trial that must not run (asked past the budget, or queued once it was spent): never counted."""
    trial.set_user_attr("surplus", True)
    study.tell(trial, state=TrialState.FAIL)


def fail_stale(study: optuna.Study) -> None:
    """Fail trials whose worker stopped beating; the retry callback queues them again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def close_interrupted(study: optuna.Study) -> int:
    """Deal with trials a crash left RUNNING; returns how many were closed as interrupted.

    With heartbeats (database storages) a trial a worker has claimed is
    failed only once its heartbeat is stale, and the retry callback queues
    it again: a live worker's trial is never touched, so a resume is safe
    while other workers run. A RUNNING trial no worker claimed (no heartbeat
    to wait for), or any RUNNING trial without heartbeats, is taken as dead.
    """
    if optuna_private.heartbeat_enabled(study):
        fail_stale(study)
    stale = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if not (optuna_private.heartbeat_enabled(study) and t.user_attrs.get("worker"))]
    for trial in stale:
        optuna_private.set_user_attr(study, trial, "interrupted", True)
        study.tell(trial.number, state=TrialState.FAIL)
    return len(stale)


def trial_attrs(config: Config, result: TrialResult, method: str, source: str) -> dict[str, Any]:
    return {
        "method": method,
        "source": source,
        "config": config,
        "status": result.status,
        "fail_reason": result.fail_reason,
        "history": [e.to_dict() for e in result.history],
        "best_epoch": result.best_epoch,
        "seconds": result.seconds,
        "n_params": result.n_params,
        "test_metric": result.test_metric,
        "extra_metrics": result.extra_metrics,
    }


def finish_trial(study: optuna.Study, trial: optuna.Trial, result: TrialResult, attrs: dict[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if result.ok:
        study.tell(trial, result.val_metric)
    else:
        study.tell(trial, state=TrialState.FAIL)


# The LangGraph thread of a study's LGT loop, made with the study (`graph_thread`).
GRAPH_THREAD_ATTR = "graph_thread"


def graph_thread(study: optuna.Study, legacy: str) -> str:
    """The id under which the study's LGT graph is checkpointed: a token made with the study.

    Checkpoints live apart from the study (a file in the run folder, or
    tables beside a PostgreSQL storage), so a study deleted and made again
    under the same name must not find the old one's graph: it would resume
    a finished run and train nothing. A study from before the token, with
    finished trials, keeps its checkpoints under `legacy` (its old thread
    id). Call it where only one process drives the study (the run's lease,
    the sampler's study lock).
    """
    token = study.user_attrs.get(GRAPH_THREAD_ATTR)
    if isinstance(token, str):
        return token
    if any(t.state.is_finished() for t in study.get_trials(deepcopy=False)):
        return legacy
    token = f"{legacy}:{uuid.uuid4().hex[:12]}"
    study.set_user_attr(GRAPH_THREAD_ATTR, token)
    return token


def add_wall_time(study: optuna.Study, seconds: float) -> None:
    """Wall time accumulates over resumed sessions, so a bench sees the run's true cost."""
    study.set_user_attr("wall_seconds", float(study.user_attrs.get("wall_seconds", 0.0)) + seconds)


def study_direction(study: optuna.Study) -> Direction:
    """A single-objective study's direction, as `lgt.direction` names it."""
    return direction_of(study.direction == optuna.study.StudyDirection.MAXIMIZE)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial (the earliest on ties), by `lgt.direction`'s rule."""
    return best_of(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), study_direction(study),
                   lambda t: t.value)
