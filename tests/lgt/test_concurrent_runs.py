"""Issue 23.1-2: two processes never drive one run; two benches on one id share the work.

Real `lgt` processes on one SQLite storage; the LLM is the scripted server
behind a real port. The target is `synthetic:SECONDS`, whose trials sleep,
so the runs of two processes started together overlap for certain.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from cli_process import REPO, one_line_exit_2, run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM

from lgt.studies import counted_trials, open_storage

BENCH = ["bench", "--targets", "synthetic:2", "--methods", "tpe,lgt", "--trials", "3", "--seeds", "1",
         "--optimize-every", "0", "--llm-model", "scripted"]


def _env(results: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    return env | {"LGT_RESULTS_DIR": str(results), "LGT_OFFLINE": "1", "OPENAI_API_KEY": "sk-test-concurrent",
                  "OPENAI_BASE_URL": base_url, "LGT_HEARTBEAT_SECONDS": "1"}


def _start(args: list[str], results: Path, base_url: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "lgt", *args], cwd=REPO, env=_env(results, base_url),
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def _wait_until_driven(storage: str, name: str, proc: subprocess.Popen[str], log: Path) -> None:
    """Until the run exists and is being driven: its lease is held or a trial is stored (many seconds of work ahead)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        study = None
        if Path(storage.removeprefix("sqlite:///")).exists():
            with contextlib.suppress(KeyError):
                study = optuna.load_study(study_name=name, storage=open_storage(storage))  # under its creation lock
        if study is not None and (study.user_attrs.get("driver") or study.trials):
            return
        time.sleep(0.2)
    pytest.fail(log.read_text()[-3000:])


def test_two_identical_benches_at_once_share_the_work(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    llm = ScriptedLLM()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    started = time.monotonic()
    with serve(llm) as base_url:
        procs = [_start(BENCH, results, base_url, log) for log in logs]
        outs = [proc.communicate(timeout=600)[0] for proc in procs]
    elapsed = time.monotonic() - started
    errs = [log.read_text() for log in logs]
    for proc, err in zip(procs, errs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err

    (bench_dir,) = (results / "bench").iterdir()
    names = {r["method"]: r["study_name"] for r in csv.DictReader((bench_dir / "summary.csv").open())}
    for method, name in names.items():
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.user_attrs.get("status") != "failed", (method, study.user_attrs.get("fail_reason"))
        assert len(study.trials) == 3 and len(counted_trials(study)) == 3, method  # trained once, not twice
    lgt = optuna.load_study(study_name=names["lgt"], storage=storage)
    assert sorted(t.user_attrs["round"] for t in lgt.trials) == [1, 2, 3]
    calls = Counter(agent for agent, _ in llm.requests)
    assert calls["chooser"] == 2, calls  # rounds 2 and 3, asked once each
    assert float(lgt.user_attrs["wall_seconds"]) < elapsed  # one driver's time, not two added up
    for out in outs:  # both end with the whole bench
        assert "failed" not in out and "| TPE |" in out and "| LGT |" in out, out
    assert any("being run by another process" in err for err in errs), errs  # they met, and one stood back
    for name in names.values():  # and the leases were given back
        assert optuna.load_study(study_name=name, storage=storage).user_attrs["driver"] is None


def test_a_live_run_is_not_driven_twice_and_a_killed_one_resumes_at_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    log = tmp_path / "first.log"
    llm = ScriptedLLM()
    with serve(llm) as base_url:
        env = {"OPENAI_API_KEY": "sk-test-concurrent", "OPENAI_BASE_URL": base_url, "LGT_HEARTBEAT_SECONDS": "1"}
        first = _start(["tune", "--target", "synthetic:6", "--trials", "4", "--run-id", "live", "--optimize-every",
                        "0", "--llm-model", "scripted"], results, base_url, log)
        try:
            _wait_until_driven(storage, "live", first, log)  # 18 s of trials ahead: the second process meets it
            line = one_line_exit_2(run_lgt("tune", "--resume", "live", results=results, env=env))
            assert "run 'live' is being run by another process" in line, line
            assert "`lgt tune --resume live`" in line
            calls = len(llm.requests)
            time.sleep(1.5)  # a second driver would have asked the LLM by now; this one never started
            assert all(agent != "preflight" for agent, _ in llm.requests[calls:])

            deadline = time.monotonic() + 120  # killed with a trial done: that session's time must not be lost
            while not counted_trials(optuna.load_study(study_name="live", storage=storage)):
                assert time.monotonic() < deadline and first.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
            first.send_signal(signal.SIGKILL)
            first.wait()
            resumed = run_lgt("tune", "--resume", "live", results=results, env=env)  # at once: its holder is gone
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    study = optuna.load_study(study_name="live", storage=storage)
    assert len(counted_trials(study)) == 4 and study.user_attrs["driver"] is None
    training = sum(float(t.user_attrs.get("seconds", 0.0)) for t in study.trials)
    assert float(study.user_attrs["wall_seconds"]) >= training  # the killed session's time is counted too


def test_a_live_baseline_is_not_driven_by_a_second_lgt_baseline(tmp_path: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    log = tmp_path / "first.log"
    first = _start(["baseline", "--target", "synthetic:6", "--method", "random", "--trials", "3", "--run-id", "base"],
                   results, "http://127.0.0.1:9/v1", log)
    try:
        _wait_until_driven(storage, "base", first, log)
        line = one_line_exit_2(run_lgt("baseline", "--target", "synthetic:6", "--method", "random", "--resume",
                                       "base", results=results,
                                       env={"LGT_HEARTBEAT_SECONDS": "1"}))
        assert "run 'base' is being run by another process" in line and "lgt worker --storage" in line, line
        assert first.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    study = optuna.load_study(study_name="base", storage=storage)
    assert len(study.trials) == 3 and len(counted_trials(study)) == 3
