"""Issue 23.7: `lgt report` on a run that was killed or is still running, and on a bench still running.

A run writes summary.json only when it ends; a killed or running run is
still a run: its report says what the storage holds and that it is
incomplete. A bench's run that has not started yet is said to be so (the
storage is the right one). Real `lgt` processes, killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from cli_process import REPO, run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM

from lgt.studies import counted_trials, open_storage


def _start(args: list[str], results: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    base |= {"LGT_RESULTS_DIR": str(results), "LGT_OFFLINE": "1", "LGT_HEARTBEAT_SECONDS": "1"} | (env or {})
    return subprocess.Popen([sys.executable, "-m", "lgt", *args], cwd=REPO, env=base, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), text=True)


def _until(check: Callable[[], bool], proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(KeyError):
            if check():
                return
        time.sleep(0.1)
    pytest.fail(log.read_text()[-3000:])


def _trials(storage: str, name: str) -> int:
    if not Path(storage.removeprefix("sqlite:///")).exists():
        return 0
    return len(counted_trials(optuna.load_study(study_name=name, storage=open_storage(storage))))


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_report_on_a_running_then_killed_lgt_run(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    log = tmp_path / "run.log"
    with serve(ScriptedLLM()) as base_url:
        env = {"OPENAI_API_KEY": "sk-test-report", "OPENAI_BASE_URL": base_url}
        proc = _start(["tune", "--target", "synthetic:3", "--trials", "8", "--run-id", "cut", "--optimize-every",
                       "0"], results, log, env)
        try:
            _until(lambda: _trials(storage, "cut") >= 1, proc, log)
            running = run_lgt("report", str(results / "cut"), results=results)
            assert running.returncode == 0, running.stderr[-2000:]
            assert "note: run cut is still running" in running.stderr, running.stderr
            _until(lambda: _trials(storage, "cut") >= 2, proc, log)
        finally:
            _kill(proc)
    stored = _trials(storage, "cut")
    assert 2 <= stored < 8
    folder = results / "cut"
    (folder / "summary.json").unlink(missing_ok=True)  # as the kill left it: a run folder without summary.json
    done = run_lgt("report", str(folder), results=results)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (f"note: run cut is incomplete ({stored} of 8 trials stored; it was stopped before its budget was spent): "
            "`lgt tune --resume cut` continues it") in done.stderr
    page = (folder / "report.md").read_text()
    assert "Status: incomplete." in page and f"**Incomplete:** the storage holds {stored} of 8 trials" in page
    assert json.loads((folder / "summary.json").read_text())["status"] == "incomplete"
    assert (folder / "changelog.md").read_text().count("## Round") == stored
    assert "id=\"changelog\"" in (folder / "report.html").read_text()


def test_report_on_a_killed_baseline_that_wrote_no_folder(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    log = tmp_path / "run.log"
    proc = _start(["baseline", "--target", "synthetic:1", "--method", "random", "--trials", "4", "--run-id", "b"],
                  results, log)
    try:
        _until(lambda: _trials(storage, "b") >= 1, proc, log)
    finally:
        _kill(proc)
    assert not (results / "b").exists()
    done = run_lgt("report", str(results / "b"), results=results)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "`lgt baseline --resume b` continues it" in done.stderr
    assert "Status: incomplete." in (results / "b" / "report.md").read_text()


def test_report_on_a_running_bench_says_which_runs_have_not_started(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    log = tmp_path / "bench.log"
    proc = _start(["bench", "--targets", "synthetic:2", "--methods", "random,tpe", "--trials", "3", "--seeds", "1,2"],
                  results, log)
    try:
        _until(lambda: any(p.study_name.endswith(".random.s1") and _trials(storage, p.study_name) >= 1
                           for p in optuna.get_all_study_summaries(open_storage(storage), include_best_trial=False))
               if Path(storage.removeprefix("sqlite:///")).exists() else False, proc, log)
        (folder,) = (results / "bench").iterdir()
        early = run_lgt("report", str(folder), results=results)
        assert early.returncode == 0, early.stderr[-2000:]
        assert "pass the storage" not in early.stderr
        assert "not started yet" in early.stderr and "the same `lgt bench` command continues it" in early.stderr
        table = (folder / "table.md").read_text()
        assert "not started yet" in table, table
        assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        _kill(proc)
    final = run_lgt("report", str(folder), results=results)
    assert final.returncode == 0 and "note:" not in final.stderr, final.stderr
    assert "not started yet" not in (folder / "table.md").read_text()
