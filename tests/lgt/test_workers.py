"""Workers on a real PostgreSQL study: exact budgets, and a worker killed mid-trial.

Workers are real `lgt worker` processes; the trials use the synthetic
target, which sleeps a fixed time, so the timing of a kill is controlled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lgt.baselines import BaselineRequest, run_baseline
from lgt.studies import open_storage

HEARTBEAT = "1"  # seconds; the grace period is three beats


def worker_env() -> dict[str, str]:
    return {**os.environ, "LGT_HEARTBEAT_SECONDS": HEARTBEAT, "LGT_OFFLINE": "1"}


def start_worker(url: str, study: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "lgt.cli", "worker", "--storage", url, "--study", study],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=worker_env())


def wait_all(procs: list[subprocess.Popen[bytes]], logs: list[Path], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for proc, log in zip(procs, logs):
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"worker did not finish:\n{log.read_text()}")
        assert proc.returncode == 0, log.read_text()


def create(url: str, run_id: str, method: str, trials: int, seconds: float,
           monkeypatch: pytest.MonkeyPatch) -> optuna.Study:
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", HEARTBEAT)
    run_baseline(BaselineRequest(target=f"synthetic:{seconds}", method=method, trials=trials, seed=1, storage=url,
                                 run_id=run_id, create_only=True))
    return optuna.load_study(study_name=run_id, storage=open_storage(url))


def test_two_workers_share_a_tpe_study_and_finish_exactly_its_budget(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = create(postgres_url, "tpe-shared", "tpe", trials=8, seconds=0.4, monkeypatch=monkeypatch)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    procs = [start_worker(postgres_url, "tpe-shared", log) for log in logs]
    wait_all(procs, logs)

    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    assert all(t.user_attrs.get("surplus") for t in trials if t.state != TrialState.COMPLETE)
    assert [t.user_attrs["source"] for t in complete].count("default") == 1
    assert min(complete, key=lambda t: t.number).user_attrs["source"] == "default"
    workers = {t.user_attrs["worker"] for t in complete}
    assert len(workers) == 2, "both workers should have trained trials"
    assert all(t.user_attrs["method"] == "tpe" for t in complete)


def test_a_killed_workers_trial_is_retried_and_the_budget_is_still_exact(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    study = create(postgres_url, "killed", "random", trials=3, seconds=3.0, monkeypatch=monkeypatch)
    doomed = start_worker(postgres_url, "killed", tmp_path / "doomed.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until it is inside a trial
        running = [t for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs.get("worker")]
        if running:
            break
        time.sleep(0.1)
    else:
        pytest.fail((tmp_path / "doomed.log").read_text())
    victim = running[0]
    time.sleep(0.5)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()

    log = tmp_path / "rescuer.log"
    wait_all([start_worker(postgres_url, "killed", log)], [log])

    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3, [(t.number, t.state) for t in trials]
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL and "status" not in killed.user_attrs  # failed by staleness, not counted
    retries = [t for t in complete if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert retries[0].user_attrs["source"] == victim.user_attrs.get("source", "random")
