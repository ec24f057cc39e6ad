"""Where things go by default, overridable by environment for tests and CI."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path


def results_dir() -> Path:
    return Path(os.environ.get("LGT_RESULTS_DIR", "results"))


def default_storage_url() -> str:
    """One SQLite file for every run, so one dashboard shows LGT and baselines side by side."""
    path = results_dir() / "studies.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def new_run_id(target: str, method: str, seed: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", Path(target.removeprefix("csv:")).stem if target.startswith("csv:")
                  else target).strip("_")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{slug}-{method}-s{seed}-{stamp}"


def run_dir(run_id: str) -> Path:
    path = results_dir() / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path
