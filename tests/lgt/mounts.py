"""Small file systems for tests: a tmpfs that can be filled up or made read-only.

Root ignores file permissions, so a read-only folder or SQLite file is only
read-only for root on a read-only mount; a full disk is a small tmpfs
filled to the last byte. Both need `mount` (root in CI); a test that needs
one is skipped, saying why, where mounting is not possible.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    """A fresh tmpfs of `size` mounted at `path` (created) while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); the test needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def read_only(path: Path) -> None:
    """Remount the tmpfs at `path` read-only: no process, root included, may write to it."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True, capture_output=True)


def writable(path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,rw", str(path)], check=True, capture_output=True)


def fill(path: Path) -> Path:
    """Write a file into the file system of `path` until it is full; returns the file (delete it to make room)."""
    filler = path / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12, 1):  # big blocks, then the last bytes
            block = b"\0" * size
            while True:
                try:
                    fh.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    assert os.statvfs(path).f_bavail == 0
    return filler
