"""Where things go by default, overridable by environment for tests and CI."""

from __future__ import annotations

from pathlib import Path

from lgt import environment
from lgt.errors import UserError
from lgt.runs import check_run_id


def results_dir() -> Path:
    return Path(environment.RESULTS_DIR.text() or "results")


def default_storage_url() -> str:
    """One SQLite file for every run, so one dashboard shows LGT and baselines side by side.

    Its folder is made by `lgt.studies.open_storage` when a run opens it, not
    here: a command that fails on its input must leave no empty results folder.
    """
    return f"sqlite:///{results_dir() / 'studies.db'}"


def run_path(run_id: str) -> Path:
    """`results/<run-id>/`, not created: checked before anything is, so a bad name is refused first."""
    check_run_id(run_id)
    root = results_dir().resolve()
    path = (root / run_id).resolve()
    if path.parent != root:
        raise UserError(f"run id {run_id!r} would write outside {root}")
    return path

