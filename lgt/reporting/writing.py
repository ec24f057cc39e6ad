"""Files written whole: a reader (a browser reloading, `lgt report`, a second bench) never sees half of one.

Each file is written to a temporary name of this process beside it, then
renamed over it. Two processes writing the same report at once (two
benches on one id end together; `lgt report` on a running run) each rename
a whole file, and the last one stands.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def temp_path(path: Path) -> Path:
    """A name beside `path` that no other process or thread writes at the same time."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_whole(path: Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_with(path: Path, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to write the file under a temporary name, then rename it to `path`."""
    tmp = temp_path(path)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
