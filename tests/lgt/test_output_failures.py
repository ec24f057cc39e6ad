"""Issue 23.4: where a run writes is checked before it trains, and a write that fails later is one line.

Real `lgt` processes on real file systems: a results dir that is a file, a
read-only mount for the results folder and for an SQLite storage (root
writes through file permissions, not through a read-only mount), and a
small tmpfs that is full from the start or fills up while trials train.
After a late failure the storage keeps the trials, and the command the
line prints finishes the job once there is room.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from cli_process import REPO, one_line_exit_2, run_lgt
from mounts import fill, read_only, tmpfs

from lgt.studies import counted_trials, open_storage

BASELINE = ["baseline", "--target", "iris", "--method", "random", "--trials", "2"]
TUNE = ["tune", "--target", "iris", "--trials", "2", "--llm-base-url", "http://127.0.0.1:9/v1"]
BENCH = ["bench", "--targets", "iris", "--methods", "random", "--trials", "2", "--seeds", "1"]


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("argv", [BASELINE, TUNE, BENCH], ids=["baseline", "tune", "bench"])
def test_results_dir_that_is_a_file_is_one_line_before_anything(tmp_path: Path, argv: list[str]) -> None:
    results = tmp_path / "results"
    results.write_text("not a folder\n")
    storage = tmp_path / "s.db"
    line = one_line_exit_2(run_lgt(*argv, "--storage", f"sqlite:///{storage}", results=results))
    assert "is a file, not a folder" in line and "LGT_RESULTS_DIR" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no storage file either
    assert results.read_text() == "not a folder\n"


@pytest.mark.parametrize("argv", [BASELINE, TUNE, BENCH], ids=["baseline", "tune", "bench"])
def test_read_only_results_folder_is_one_line_before_anything(tmp_path: Path, argv: list[str]) -> None:
    with tmpfs(tmp_path / "ro") as mount:
        (mount / "results").mkdir()
        read_only(mount)
        storage = tmp_path / "s.db"
        line = one_line_exit_2(run_lgt(*argv, "--storage", f"sqlite:///{storage}", results=mount / "results"))
        assert "cannot be written" in line and "read-only file system" in line, line
        assert not storage.exists() and _tree(mount) == {}


def test_read_only_sqlite_storage_is_one_line_and_the_file_is_untouched(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro") as mount:
        db = mount / "studies.db"
        subprocess.run([sys.executable, "-c", ("import optuna, sys; optuna.create_study(study_name='earlier', "
                        "storage=sys.argv[1])"), f"sqlite:///{db}"], check=True, capture_output=True)
        read_only(mount)  # (made by a process that has ended: a file open for writing keeps a mount writable)
        before = db.read_bytes()
        for argv in (BASELINE, TUNE, BENCH):
            line = one_line_exit_2(run_lgt(*argv, "--storage", f"sqlite:///{db}", results=tmp_path / "results"))
            assert "is read-only" in line or "cannot be written" in line, line
        assert db.read_bytes() == before and not (tmp_path / "results").exists()


@pytest.mark.parametrize("where", ["results", "storage"])
def test_a_full_disk_is_one_line_before_anything(tmp_path: Path, where: str) -> None:
    with tmpfs(tmp_path / "full", size="1m") as mount:
        filler = fill(mount)
        results = mount / "results" if where == "results" else tmp_path / "results"
        storage = mount / "s.db" if where == "storage" else tmp_path / "s.db"
        line = one_line_exit_2(run_lgt(*BASELINE, "--storage", f"sqlite:///{storage}", results=results))
        assert "cannot be written" in line and "free" in line, line
        assert sorted(p.name for p in mount.iterdir()) == [filler.name]
        assert not (tmp_path / "results").exists() and not (tmp_path / "s.db").exists()


def _start_baseline(results: Path, storage: str, log: Path) -> subprocess.Popen[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env |= {"LGT_RESULTS_DIR": str(results), "LGT_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "lgt", "baseline", "--target", "synthetic:1.5", "--method", "random",
                             "--trials", "3", "--run-id", "fills", "--storage", storage], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def _wait_for_a_trial(storage: str, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(KeyError):
            if Path(storage.removeprefix("sqlite:///")).exists() and counted_trials(
                    optuna.load_study(study_name="fills", storage=open_storage(storage))):
                return
        time.sleep(0.1)
    pytest.fail(log.read_text()[-3000:])


def _one_line(proc: subprocess.Popen[str], log: Path) -> str:
    assert proc.wait(timeout=300) == 2, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("lgt: error: ")]
    assert len(errors) == 1 and text.rstrip().endswith(errors[0]), text[-3000:]
    return errors[0]


def test_results_disk_filling_during_the_run_is_one_line_and_lgt_report_writes_the_files(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    log = tmp_path / "run.log"
    with tmpfs(tmp_path / "disk", size="8m") as mount:
        results = mount / "results"
        proc = _start_baseline(results, storage, log)
        _wait_for_a_trial(storage, proc, log)
        filler = fill(mount)
        line = _one_line(proc, log)
        assert "the trials are stored, but the run's files could not be written" in line, line
        assert "No space left on device" in line
        study = optuna.load_study(study_name="fills", storage=storage)
        assert len(counted_trials(study)) == 3  # every trial kept

        filler.unlink()  # room again: the printed command writes the files
        command = re.search(r"`(lgt report [^`]+)`", line)
        assert command, line
        done = run_lgt(*shlex.split(command[1])[1:], results=results)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (results / "fills" / "report.md").is_file() and (results / "fills" / "trials.csv").stat().st_size


def test_storage_disk_filling_during_the_run_is_one_line_and_resume_finishes(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    results = tmp_path / "results"
    with tmpfs(tmp_path / "disk", size="8m") as mount:
        storage = f"sqlite:///{mount / 'studies.db'}"
        proc = _start_baseline(results, storage, log)
        _wait_for_a_trial(storage, proc, log)
        filler = fill(mount)
        line = _one_line(proc, log)
        assert "writing to the storage" in line and "full" in line, line
        assert f"`lgt baseline --resume fills --storage {storage}`" in line

        filler.unlink()
        resumed = run_lgt("baseline", "--resume", "fills", "--storage", storage, results=results)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert len(counted_trials(optuna.load_study(study_name="fills", storage=storage))) == 3
        assert (results / "fills" / "report.md").is_file()


def test_results_disk_filling_during_an_lgt_run_is_one_line_and_resume_finishes(tmp_path: Path) -> None:
    """The transcript, the checkpoint and the change log are written every round: a full disk stops the run in one line."""
    import os

    from llm_server import serve
    from scripted_llm import ScriptedLLM

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    log = tmp_path / "run.log"
    with serve(ScriptedLLM()) as base_url, tmpfs(tmp_path / "disk", size="8m") as mount:
        results = mount / "results"
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env |= {"LGT_RESULTS_DIR": str(results), "LGT_OFFLINE": "1", "OPENAI_API_KEY": "sk-test-full",
                "OPENAI_BASE_URL": base_url}
        proc = subprocess.Popen([sys.executable, "-m", "lgt", "tune", "--target", "synthetic:1.5", "--trials", "5",
                                 "--run-id", "fills", "--optimize-every", "0", "--storage", storage], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
        _wait_for_a_trial(storage, proc, log)
        filler = fill(mount)
        _one_line(proc, log)
        kept = len(counted_trials(optuna.load_study(study_name="fills", storage=storage)))
        assert 1 <= kept < 5

        filler.unlink()
        resumed = run_lgt("tune", "--resume", "fills", "--storage", storage, results=results,
                          env={"OPENAI_API_KEY": "sk-test-full", "OPENAI_BASE_URL": base_url})
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert len(counted_trials(optuna.load_study(study_name="fills", storage=storage))) == 5
        assert (results / "fills" / "report.md").is_file()
