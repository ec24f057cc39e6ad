"""Who drives a run: a lease on its study, renewed by a heartbeat, so no two processes drive one run.

An LGT run's graph, or the trial loop of `lgt baseline` (and so every bench
cell), is driven by one process at a time. Two drivers of one run would ask
the LLM twice per round, train the same rounds twice and add their wall
times together. So the driver writes a lease into the study (user attr
`driver`: who holds it, a token, and when it last beat), renews it from a
thread every heartbeat interval (`LGT_HEARTBEAT_SECONDS`, as workers do for
trials), and clears it when it stops. Another process that would drive the
run (a second bench, a `--resume` while the first process goes on) sees a
live lease and stands back with `RunBusy`.

A lease is dead once its beat is older than three intervals, or at once when
its holder was a process of this machine (same boot, same pid namespace)
that is gone (killed, or crashed), so a run whose driver died is resumable
without waiting. `lgt worker`s take
no lease: many of them share one study by design, and Optuna's trial
heartbeats keep them apart.

Taking a lease is a check, then a write; a lock held for those milliseconds
makes the pair atomic between processes: `flock` on the SQLite file's folder
(the same lock that guards creating the file), or a PostgreSQL advisory
lock. Creating a new run's study happens under the same lock, so a process
that loses the race to create a run always finds the winner's lease.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy

from lgt.errors import UserError
from lgt.optuna_private import storage_of
from lgt.studies import (
    add_wall_time,
    folder_lock,
    heartbeat_seconds,
    libpq_url,
    load_study,
    sqlalchemy_url,
    sqlite_file,
)

LEASE_ATTR = "driver"
STALE_BEATS = 3  # as for trials: a lease is dead once its last beat is three intervals old


class RunBusy(UserError):
    """Another live process drives this run; `holder` names it and `age` says how long ago it last beat."""

    def __init__(self, run_id: str, holder: str, age: float, hint: str = "") -> None:
        self.run_id, self.holder, self.age = run_id, holder, age
        super().__init__(f"run {run_id!r} is being run by another process ({holder}, last seen {age:.0f} s ago)"
                         + (f"; {hint}" if hint else ""))


def holder_name() -> str:
    """This process as a lease names it: host and pid, so a dead holder on this machine is seen at once."""
    return f"{socket.gethostname()}:{os.getpid()}"


def live_holder(attrs: Mapping[str, Any], now: float | None = None) -> tuple[str, float] | None:
    """(holder, seconds since its last beat) of a study's live lease; None when nobody drives the run."""
    lease = attrs.get(LEASE_ATTR)
    if not isinstance(lease, Mapping) or not lease.get("holder"):
        return None
    holder = str(lease["holder"])
    try:
        age = (time.time() if now is None else now) - float(lease.get("beat") or 0.0)
    except (TypeError, ValueError):
        return None
    if age > STALE_BEATS * float(lease.get("interval") or heartbeat_seconds()):
        return None
    _, _, pid = holder.rpartition(":")
    here = _process_space()
    if here is not None and lease.get("space") == here and pid.isdigit() and _gone(int(pid)):
        return None
    return holder, max(0.0, age)


def _process_space() -> str | None:
    """This machine's boot and this process's pid namespace: where a holder's pid means the same process.

    A host name alone is not enough (two machines called localhost on one
    database, or containers sharing a host name), and a pid from another
    namespace names another process; None where Linux's /proc cannot say.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return None


def _gone(pid: int) -> bool:
    """Whether process `pid` of this machine has ended (a zombie, killed but not yet reaped, has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def check_free(study: optuna.Study, hint: str = "") -> None:
    """Raise `RunBusy` when another process holds a live lease on the study's run."""
    found = live_holder(study.user_attrs)
    if found is not None:
        raise RunBusy(study.study_name, found[0], found[1], hint)


@contextlib.contextmanager
def mutex(url: str) -> Iterator[None]:
    """Held while a lease is checked and written (or a run's study created), between processes.

    SQLite: `flock` on the file's folder. PostgreSQL: a session advisory
    lock on a connection of its own. Other storages (in memory, journal
    files) get none: one process, or no guarantee.
    """
    path = sqlite_file(url)
    if path is not None:
        with folder_lock(path.parent):
            yield
        return
    if libpq_url(url) is None:
        yield
        return
    engine = sqlalchemy.create_engine(sqlalchemy_url(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(hashtext('lgt run lease'))"))
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext('lgt run lease'))"))
    finally:
        engine.dispose()


@dataclass
class Lease:
    """A lease this process holds; `release` ends it (only if it is still this process's)."""

    study: optuna.Study
    token: str
    interval: float
    stop: threading.Event
    thread: threading.Thread | None = None
    since: float = dataclasses.field(default_factory=time.time)  # when this process began driving

    def value(self) -> dict[str, Any]:
        return {"holder": holder_name(), "token": self.token, "beat": time.time(), "interval": self.interval,
                "space": _process_space(), "since": self.since}

    def beat_forever(self) -> None:
        while not self.stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat is retried; three in a row lose the lease
                self.study.set_user_attr(LEASE_ATTR, self.value())

    def release(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        with contextlib.suppress(Exception):  # the storage may be what failed; the lease then goes stale
            current = optuna.load_study(study_name=self.study.study_name,
                                        storage=storage_of(self.study)).user_attrs.get(LEASE_ATTR)
            if isinstance(current, Mapping) and current.get("token") == self.token:
                self.study.set_user_attr(LEASE_ATTR, None)


def _count_lost_wall_time(study: optuna.Study) -> None:
    """A driver killed outright (SIGKILL, power loss) never added its session's wall time; its dead lease says it.

    A driver that stops in any other way adds its time and clears the lease,
    so a lease still standing here is a killed session's: from when it began
    to its last beat (up to one interval short). Without this, a resumed
    run's trials would hold more training seconds than its wall time.
    """
    lease = study.user_attrs.get(LEASE_ATTR)
    if isinstance(lease, Mapping) and isinstance(lease.get("since"), (int, float)) \
            and isinstance(lease.get("beat"), (int, float)):
        add_wall_time(study, max(0.0, float(lease["beat"]) - float(lease["since"])))


@contextlib.contextmanager
def driving(url: str, storage: optuna.storages.BaseStorage, run_id: str, *,
            create: Callable[[], optuna.Study] | None = None, hint: str = "") -> Iterator[optuna.Study]:
    """Hold the run's lease while the block drives it; yields the study (made by `create` for a new run).

    For a new run, `create` makes the study under the mutex (a run id taken
    meanwhile is its UserError); for a run being continued, a live lease of
    another process is `RunBusy` with `hint` appended. The lease beats from
    a thread until the block ends, however it ends.
    """
    with mutex(url):
        if create is not None:
            study = create()
        else:
            study = load_study(storage, run_id)
            check_free(study, hint)
            _count_lost_wall_time(study)
        lease = Lease(study, uuid.uuid4().hex, float(heartbeat_seconds()), threading.Event())
        study.set_user_attr(LEASE_ATTR, lease.value())
    lease.thread = threading.Thread(target=lease.beat_forever, name=f"lease-{run_id}", daemon=True)
    lease.thread.start()
    try:
        yield study
    finally:
        lease.release()
