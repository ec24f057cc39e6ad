"""Issue 15.4: a taken `--run-id` and an out-of-range seed are one line, exit 2, and leave nothing behind.

A taken run id says which run holds it and the command that continues that
run; a bad seed is refused before the storage opens, so no database file
appears. `lgt` is run as a real process for the first of each, and through
its `main` for the variations.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt

from lgt.cli import main
from lgt.errors import UserError
from lgt.runs import RunSpec
from lgt.studies import create_study, open_storage
from tuning_targets import make_target

REPO = Path(__file__).resolve().parents[2]
DEAD_LLM = "http://127.0.0.1:9/v1"  # nothing listens: a check that ran after the LLM preflight would say so


def _lgt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_lgt(*args, results=tmp_path / "results", env={"OPENAI_API_KEY": "sk-test-ids"})




def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lgt: error: "), err
    return err[0]


# --- a run id that is taken ----------------------------------------------------------------------------------


def test_reusing_a_baseline_run_id_says_how_to_resume_it(tmp_path: Path) -> None:
    first = _lgt(tmp_path, "baseline", "--target", "iris", "--method", "random", "--trials", "1", "--run-id", "taken")
    assert first.returncode == 0, first.stderr[-2000:]
    storage = f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    listing = sorted(p.name for p in (tmp_path / "results" / "taken").iterdir())

    line = one_line_exit_2(_lgt(tmp_path, "baseline", "--target", "iris", "--method", "tpe", "--trials", "2",
                                 "--run-id", "taken"))
    assert line == ("lgt: error: run 'taken' already exists in this storage (random on iris); continue it with "
                    "`lgt baseline --resume taken`, or choose another --run-id")
    # lgt tune checks before it starts (or reaches) an LLM: the dead endpoint is never asked.
    line = one_line_exit_2(_lgt(tmp_path, "tune", "--target", "iris", "--run-id", "taken", "--llm-base-url", DEAD_LLM))
    assert "already exists" in line and "`lgt baseline --resume taken`" in line
    study = optuna.load_study(study_name="taken", storage=storage)
    assert len(study.trials) == 1 and study.user_attrs["method"] == "random"  # untouched
    assert sorted(p.name for p in (tmp_path / "results" / "taken").iterdir()) == listing


def test_reusing_an_lgt_run_id_points_to_lgt_tune_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="agents-run", storage=storage, direction="maximize")
    for key, value in {"run_id": "agents-run", "target": "csv:/home/me/private/houses.csv", "method": "lgt",
                       "seed": 0, "trials": 3}.items():
        study.set_user_attr(key, value)
    optuna.create_study(study_name="foreign", storage=storage)  # made by someone else: no lgt attributes

    assert main(["baseline", "--target", "iris", "--method", "tpe", "--storage", storage, "--run-id", "agents-run"]) == 2
    line = _error_line(capsys)
    assert line == ("lgt: error: run 'agents-run' already exists in this storage (lgt on houses); continue it with "
                    f"`lgt tune --resume agents-run --storage {storage}`, or choose another --run-id")
    assert main(["baseline", "--target", "iris", "--method", "tpe", "--storage", storage, "--run-id", "agents-run",
                 "--create-only"]) == 2
    assert f"`lgt tune --resume agents-run --storage {storage}`" in _error_line(capsys)
    assert main(["tune", "--target", "iris", "--storage", storage, "--run-id", "foreign",
                 "--llm-base-url", DEAD_LLM]) == 2
    assert "run 'foreign' already exists in this storage; it was not made by lgt" in _error_line(capsys)


def test_a_run_created_in_between_is_still_one_line(tmp_path: Path) -> None:
    """The early check can lose a race; creating the study then refuses the same way."""
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}")
    target = make_target("iris")
    spec = RunSpec("twice", "iris", "tpe", 0, 2)
    create_study(storage, spec, target)
    with pytest.raises(UserError, match=r"run 'twice' already exists .*`lgt baseline --resume twice`"):
        create_study(storage, spec, target)


# --- seeds out of range --------------------------------------------------------------------------------------


SEEDS = ["-1", "99999999999"]


def test_bad_seed_in_a_real_process_leaves_no_database(tmp_path: Path) -> None:
    line = one_line_exit_2(_lgt(tmp_path, "baseline", "--target", "iris", "--method", "tpe", "--seed", "-1"))
    assert line == "lgt: error: a seed must be a whole number from 0 to 4294967295, got -1"
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("command", ["baseline", "tune", "bench"])
@pytest.mark.parametrize("storage_given", [False, True], ids=["default-storage", "given-storage"])
def test_bad_seeds_leave_no_database(command: str, seed: str, storage_given: bool, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "given.db"
    storage = ["--storage", f"sqlite:///{db}"] if storage_given else []
    argv = {"baseline": ["baseline", "--target", "iris", "--method", "tpe", "--seed", seed],
            "tune": ["tune", "--target", "iris", "--seed", seed, "--llm-base-url", DEAD_LLM],
            "bench": ["bench", "--targets", "iris", "--methods", "tpe", "--trials", "1", "--seeds", seed],
            }[command]
    assert main([*argv, *storage]) == 2
    assert f"a seed must be a whole number from 0 to 4294967295, got {seed}" in _error_line(capsys)
    assert not db.exists()
    assert not (tmp_path / "results").exists()  # LGT_RESULTS_DIR: no folder, no studies.db
