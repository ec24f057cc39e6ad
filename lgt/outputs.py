"""Where a run writes, checked before it trains; and what a write that fails later says.

A run writes its trials to the storage and its files (report, plots, change
log, transcript) to a folder under the results dir. Learning that either
cannot be written after an hour of training loses the hour's report and
ends in a traceback, so both are checked first: a results dir that is a
file, a read-only folder or storage file, or a disk with no room left is
one line (exit 2) before anything is created. A write that fails anyway
later (the disk filled up meanwhile) is one line too, saying what the
storage kept and the command that finishes the job once there is room:
`lgt report FOLDER` writes the files, `--resume` continues the trials.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import optuna

from lgt.errors import UserError
from lgt.settings import default_storage_url
from lgt.studies import redact_url, resume_command, sqlite_file

# A run writes its report, plots and change log (a bench more): refuse a disk with less room than this.
MIN_FREE_BYTES = 4 * 1024 * 1024
# The errors of a file system that cannot take a write: full, read-only, not ours, or not a folder.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                          errno.EISDIR, errno.EFBIG})


class CannotWrite(UserError):
    """The results folder or the storage cannot be written: a bench stops rather than marking cells failed."""


def check_folder(folder: Path, what: str = "results folder") -> None:
    """`folder` can be created (or is there) and written, with room on its disk; nothing is created.

    The nearest existing folder on its path is checked: a file in the way,
    no write permission or a read-only file system, and less than
    `MIN_FREE_BYTES` free are each one line.
    """
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise CannotWrite(f"the {what} {folder} cannot be made: {existing} is a file, not a folder "
                        f"(check LGT_RESULTS_DIR)")
    _check_writable(existing, f"the {what} {folder}")


def check_storage(url: str) -> None:
    """An SQLite storage's file and folder can be written, with room on the disk; nothing is created.

    A database server answers for its own permissions and disk: what fails
    there is one line when the study is created, before training.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if path.exists():
        if not path.is_file():
            raise CannotWrite(f"storage {redact_url(url)} is not a file")
        if not os.access(path, os.R_OK | os.W_OK):
            raise CannotWrite(f"storage {redact_url(url)} is read-only ({_why(path)}); pass a --storage you can "
                            f"write, or make the file writable")
    folder = path.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    if folder.is_dir():  # SQLite writes its journal beside the file
        _check_writable(folder, f"storage {redact_url(url)}")


def _check_writable(folder: Path, what: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CannotWrite(f"{what} cannot be written: {folder} is {_why(folder)}")
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise CannotWrite(f"{what} cannot be written: the disk of {folder} has {_size(free)} free (a run needs "
                        f"at least {_size(MIN_FREE_BYTES)}); make room first")


def _why(path: Path) -> str:
    with contextlib.suppress(OSError):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "on a read-only file system"
    return "not writable by this user"


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.1f} MB" if count >= 1024 * 1024 else f"{count / 1024:.0f} kB"


def is_write_failure(exc: BaseException) -> bool:
    """Whether `exc` is the file system or the storage refusing a write (not a bug with a traceback to read)."""
    if isinstance(exc, OSError):
        return exc.errno in WRITE_ERRNOS
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(s in text for s in ("disk is full", "readonly", "read-only", "unable to open", "disk i/o"))
    return False


def cause(exc: BaseException) -> str:
    """What went wrong, in the words of whoever refused: the OS's, or the database driver's first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {exc.filename}" if exc.filename else "")
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(getattr(root, "orig", None) or root) or type(root).__name__
    return text.splitlines()[0][:200]


@contextlib.contextmanager
def storage_writes(url: str, run_id: str, agents: bool) -> Iterator[None]:
    """Trials are being written: a storage that refuses (full disk, read-only) is one line with the resume command."""
    try:
        yield
    except Exception as exc:
        if not is_write_failure(exc) or isinstance(exc, OSError):
            raise
        raise CannotWrite(f"writing to the storage {redact_url(url)} failed ({cause(exc)}); the trials stored before "
                        f"are kept: once it can be written, `{resume_command(run_id, agents, url)}` continues the "
                        f"run") from None


@contextlib.contextmanager
def file_writes(url: str, folder: Path) -> Iterator[None]:
    """The run's files are being written: a refusal is one line, and `lgt report` writes them later."""
    try:
        yield
    except Exception as exc:
        if not is_write_failure(exc):
            raise
        raise CannotWrite(f"the trials are stored, but the run's files could not be written to {folder} "
                        f"({cause(exc)}); once there is room, `{report_command(folder, url)}` writes them") from None


def report_command(folder: Path, url: str) -> str:
    command = f"lgt report {shlex.quote(str(folder))}"
    if url != default_storage_url():
        command += f" --storage {shlex.quote(redact_url(url))}"
    return command
