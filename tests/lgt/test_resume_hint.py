"""Issue 23.6: the command lgt prints to continue a taken run id runs, exactly as printed.

`lgt baseline --resume ID` needs nothing else (the study knows its target
and method), and on a storage other than the default the hint carries
`--storage`. Real processes; the printed command is run as a user would
paste it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM


def _hinted(line: str) -> list[str]:
    found = re.search(r"continue it with `(lgt [^`]+)`", line)
    assert found, line
    return shlex.split(found[1])[1:]  # without "lgt": run_lgt runs `python -m lgt`


@pytest.mark.parametrize("given_storage", [False, True], ids=["default-storage", "given-storage"])
def test_the_printed_baseline_resume_command_runs(tmp_path: Path, given_storage: bool) -> None:
    results = tmp_path / "results"
    db = tmp_path / "elsewhere.db" if given_storage else results / "studies.db"
    storage = ["--storage", f"sqlite:///{db}"] if given_storage else []
    first = run_lgt("baseline", "--target", "iris", "--method", "random", "--trials", "1", "--run-id", "dup1",
                    *storage, results=results)
    assert first.returncode == 0, first.stderr[-2000:]
    line = one_line_exit_2(run_lgt("baseline", "--target", "iris", "--method", "random", "--trials", "3",
                                   "--run-id", "dup1", *storage, results=results))
    hinted = _hinted(line)
    assert hinted[:3] == ["baseline", "--resume", "dup1"] and ("--storage" in hinted) == given_storage

    # the budget is the study's (1 trial, spent): raise it by hand, so the resume has work to do
    optuna.load_study(study_name="dup1", storage=f"sqlite:///{db}").set_user_attr("trials", 2)
    done = run_lgt(*hinted, results=results)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(optuna.load_study(study_name="dup1", storage=f"sqlite:///{db}").trials) == 2


def test_baseline_resume_by_id_needs_no_target_or_method(tmp_path: Path) -> None:
    results = tmp_path / "results"
    assert run_lgt("baseline", "--target", "wine", "--method", "random", "--trials", "1", "--run-id", "w",
                   results=results).returncode == 0
    proc = run_lgt("baseline", "--resume", "w", results=results)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = one_line_exit_2(run_lgt("baseline", "--method", "random", results=results))
    assert line == "lgt: error: lgt baseline needs --target and --method (or --resume RUN_ID to continue a run)"
    line = one_line_exit_2(run_lgt("baseline", "--target", "wine", "--resume", results=results))
    assert "needs --target and --method" in line


def test_the_printed_tune_resume_command_runs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    db = tmp_path / "other.db"
    with serve(ScriptedLLM()) as base_url:
        env = {"OPENAI_API_KEY": "sk-test-hint", "OPENAI_BASE_URL": base_url}
        first = run_lgt("tune", "--target", "iris", "--trials", "2", "--optimize-every", "0", "--run-id", "t1",
                        "--storage", f"sqlite:///{db}", results=results, env=env)
        assert first.returncode == 0, first.stderr[-2000:]
        line = one_line_exit_2(run_lgt("baseline", "--target", "iris", "--method", "tpe", "--run-id", "t1",
                                       "--storage", f"sqlite:///{db}", results=results, env=env))
        hinted = _hinted(line)
        assert hinted == ["tune", "--resume", "t1", "--storage", f"sqlite:///{db}"]
        done = run_lgt(*hinted, results=results, env=env)
    assert done.returncode == 0, done.stderr[-2000:]  # a finished run: resumed, nothing left to do, files rewritten
    assert isinstance(done, subprocess.CompletedProcess)
