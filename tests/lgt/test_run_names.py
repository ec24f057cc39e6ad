"""Issue 14.1: run ids, bench ids and study names become folder names, so none may leave the results dir.

Real `lgt` processes, started in an empty folder with LGT_RESULTS_DIR inside
it; after each refused command the folder must hold exactly what it held
before (no results dir, no database, nothing beside them).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt

from lgt.errors import UserError
from lgt.runs import RunSpec

EVIL = "../../etc/evil"


def _lgt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_lgt(*args, results=cwd / "results", cwd=cwd)




def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """tmp/a/b/work: an evil id two levels up from the results dir would land in tmp/a/etc."""
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    return work


@pytest.mark.parametrize("argv", [
    ["baseline", "--target", "iris", "--method", "tpe", "--trials", "1", "--run-id", EVIL],
    ["baseline", "--target", "iris", "--method", "tpe", "--resume", EVIL],
    ["tune", "--target", "iris", "--trials", "1", "--run-id", EVIL, "--llm-base-url", "http://127.0.0.1:9/v1"],
    ["tune", "--resume", EVIL],
    ["bench", "--targets", "iris", "--methods", "default", "--trials", "1", "--seeds", "1", "--bench-id", "../x"],
])
def test_unsafe_ids_are_refused_and_nothing_is_written(argv: list[str], sandbox: Path, tmp_path: Path) -> None:
    before = _tree(tmp_path)
    line = one_line_exit_2(_lgt(sandbox, *argv))
    assert "is not a safe name" in line
    assert _tree(tmp_path) == before


def _baseline_study(storage: str, name: str, **attrs: object) -> None:
    """A study as `lgt baseline --create-only` leaves it, but made with Optuna directly (a shared database)."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    for key, value in ({"run_id": name, "target": "iris", "method": "random", "seed": 0, "trials": 1} | attrs).items():
        study.set_user_attr(key, value)


@pytest.mark.parametrize("name, attrs, expected", [
    (EVIL, {}, "is not a safe name"),
    ("../evil", {}, "is not a safe name"),
    ("looks-fine", {"run_id": EVIL}, "says its run id is '../../etc/evil'"),
])
def test_worker_refuses_a_study_whose_name_is_unsafe(name: str, attrs: dict[str, object], expected: str,
                                                     sandbox: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    storage = f"sqlite:///{db}"
    _baseline_study(storage, name, **attrs)
    before = _tree(tmp_path)
    line = one_line_exit_2(_lgt(sandbox, "worker", "--storage", storage, "--study", name))
    assert expected in line
    assert _tree(tmp_path) == before
    assert [t.state for t in optuna.load_study(study_name=name, storage=storage).trials] == []  # nothing ran


def test_worker_runs_a_safely_named_study_of_the_same_database(sandbox: Path, tmp_path: Path) -> None:
    """The control: the same kind of study under a safe name is worked on, and nothing lands outside."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    _baseline_study(storage, EVIL)
    _baseline_study(storage, "shared-run")
    proc = _lgt(sandbox, "worker", "--storage", storage, "--study", "shared-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = optuna.load_study(study_name="shared-run", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE]
    assert not (tmp_path / "a" / "etc").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"a", "shared.db"}


def test_run_spec_from_an_unsafe_study_is_refused(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    _baseline_study(storage, "a/b")
    with pytest.raises(UserError, match="is not a safe name"):
        RunSpec.from_study(optuna.load_study(study_name="a/b", storage=storage))
