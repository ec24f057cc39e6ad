"""LGT with `--parallel K` on PostgreSQL: the driver proposes, `lgt worker` processes train.

Only the LLM is scripted. Workers and (in the restart test) the driver are
real processes; the driver is killed with SIGKILL and restarted, and must
resume from the checkpoint it keeps in the same PostgreSQL.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from llm_server import serve
from optuna.trial import TrialState
from scripted_llm import ScriptedLLM
from test_workers import HEARTBEAT, start_worker, wait_all, worker_env

from lgt.observer import RunObserver
from lgt.studies import counted_trials, open_storage
from lgt.tune import TuneRequest, run_tune


def rounds_of(study: optuna.Study) -> Counter[int]:
    return Counter(int(t.user_attrs["round"]) for t in counted_trials(study))


def test_driver_with_parallel_2_and_two_workers_runs_exactly_the_budget(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", HEARTBEAT)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    llm = ScriptedLLM()
    request = TuneRequest(target="synthetic:0.5", trials=5, seed=1, storage=postgres_url, run_id="lgt-par",
                          llm_base_url="http://llm.test/v1",
                          parallel=2, optimize_every=0, method="lgt-llm")
    workers: list[subprocess.Popen[bytes]] = []

    class Observer(RunObserver):
        """Starts the workers once the driver has created the study and queued round 1."""

        def on_message(self, text: str) -> None:
            if not workers and "queued" in text:
                workers.extend(start_worker(postgres_url, "lgt-par", log) for log in logs)

    summary = run_tune(request, Observer(), client_factory=llm.factory())
    wait_all(workers, logs)

    study = optuna.load_study(study_name="lgt-par", storage=open_storage(postgres_url))
    counted = counted_trials(study)
    assert len(counted) == 5 and all(t.state == TrialState.COMPLETE for t in counted)
    assert rounds_of(study) == {1: 1, 2: 2, 3: 2}
    for trial in counted:
        attrs = trial.user_attrs
        assert attrs["method"] == "lgt-llm" and "worker" in attrs and "history" in attrs
        if attrs["round"] == 1:
            assert attrs["source"] == "default"
        else:
            assert attrs["source"] == "advisor" and attrs["proposal"] and attrs["reasons"]
            assert trial.params["x"] == attrs["config"]["x"]
    assert len({tuple(sorted(t.params.items())) for t in counted}) == 5, "no config ran twice"
    agents = Counter(agent for agent, _ in llm.requests)
    assert agents["advisor_batch"] == 2 and agents["evaluator"] == 3
    assert study.user_attrs["verdict_round_3"]["analysis"]
    assert summary["trials_run"] == 5
    changelog = (Path(summary["run_dir"]) / "changelog.md").read_text()
    assert "Round 3" in changelog


def test_duplicates_within_a_batch_are_refused(postgres_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", HEARTBEAT)
    same = {"changes": [{"knob": "x", "value": 0.5, "reason": "closer to the middle"}], "expected_effect": "up"}
    llm = ScriptedLLM(advisor_batch=[{"proposals": [same, same]}, {"proposals": [same]}])
    log = tmp_path / "w.log"
    worker: list[subprocess.Popen[bytes]] = []

    class Observer(RunObserver):
        def on_message(self, text: str) -> None:
            if not worker and "queued" in text:
                worker.append(start_worker(postgres_url, "dups", log))

    run_tune(TuneRequest(target="synthetic:0.2", trials=3, storage=postgres_url, run_id="dups", parallel=2,
                         llm_base_url="http://llm.test/v1",
                         optimize_every=0, method="lgt-llm"), Observer(), client_factory=llm.factory())
    wait_all(worker, [log])
    study = optuna.load_study(study_name="dups", storage=open_storage(postgres_url))
    round_two = [t for t in counted_trials(study) if t.user_attrs["round"] == 2]
    assert len(round_two) == 2
    assert round_two[0].params != round_two[1].params
    sources = sorted(t.user_attrs["source"] for t in round_two)
    assert sources == ["advisor", "advisor+perturbed"]
    feedback = llm.prompts("advisor_batch")[1]
    assert "already run or proposed twice" in feedback


def test_hybrid_parallel_rounds_are_tpe_asks_with_at_most_one_advisor_pick(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", HEARTBEAT)
    llm = ScriptedLLM()  # the Advisor always picks the last candidate: an extra one, when there is any
    log = tmp_path / "w.log"
    worker: list[subprocess.Popen[bytes]] = []

    class Observer(RunObserver):
        def on_message(self, text: str) -> None:
            if not worker and "queued" in text:
                worker.append(start_worker(postgres_url, "hyb", log))

    run_tune(TuneRequest(target="synthetic:0.2", trials=7, seed=4, storage=postgres_url, run_id="hyb", parallel=2,
                         llm_base_url="http://llm.test/v1",
                         optimize_every=0), Observer(), client_factory=llm.factory())
    wait_all(worker, [log])
    study = optuna.load_study(study_name="hyb", storage=open_storage(postgres_url))
    assert rounds_of(study) == {1: 1, 2: 2, 3: 2, 4: 2}
    for round_number in (2, 3, 4):
        members = [t for t in counted_trials(study) if t.user_attrs["round"] == round_number]
        assert [t.user_attrs["slot"] for t in sorted(members, key=lambda t: t.number)] == [0, 1]
        assert members[0].user_attrs["source"] == "tpe"  # slot 0 is always TPE's ask
        assert sum(t.user_attrs["source"] == "advisor" for t in members) <= 1
    assert any(t.user_attrs.get("departed") for t in counted_trials(study))
    agents = Counter(agent for agent, _ in llm.requests)
    assert agents["chooser"] >= 1 and agents["advisor_batch"] == 0


def start_driver(url: str, base_url: str, results: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**worker_env(), "LGT_RESULTS_DIR": str(results), "OPENAI_API_KEY": "sk-test-driver"}
    cmd = [sys.executable, "-m", "lgt.cli", "tune", "--storage", url, "--llm-base-url", base_url,
           "--llm-model", "scripted", *extra]
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)


def test_killed_driver_resumes_from_the_postgres_checkpoint_without_repeating_a_round(
        postgres_url: str, tmp_path: Path) -> None:
    # x values that are never the default (0.2), so no proposal is refused and re-asked
    llm = ScriptedLLM(_rates=itertools.cycle([0.05, 0.3, 0.5, 0.6, 0.75, 0.9, 0.95, 0.4]))
    results = tmp_path / "results"
    log = tmp_path / "driver.log"
    with serve(llm) as base_url:
        driver = start_driver(postgres_url, base_url, results, log, "--target", "synthetic:1", "--trials", "7",
                              "--parallel", "2", "--optimize-every", "0", "--run-id", "restart", "--seed", "2",
                              "--proposer", "llm")
        worker_log = tmp_path / "worker.log"
        storage = None
        deadline = time.monotonic() + 90
        worker = None
        while time.monotonic() < deadline:  # start a worker once the study exists; kill the driver in round 3
            time.sleep(0.2)
            try:
                storage = storage or open_storage(postgres_url)
                study = optuna.load_study(study_name="restart", storage=storage)
            except KeyError:
                continue
            worker = worker or start_worker(postgres_url, "restart", worker_log)
            if any(t.user_attrs.get("round") == 3 for t in study.get_trials()):
                break
        else:
            pytest.fail(log.read_text())
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        calls_before = Counter(agent for agent, _ in llm.requests)
        assert calls_before["advisor_batch"] == 2  # rounds 2 and 3 were proposed

        resumed = start_driver(postgres_url, base_url, results, log, "--resume", "restart")
        assert resumed.wait(timeout=120) == 0, log.read_text()
        assert worker is not None
        wait_all([worker], [worker_log])

    study = optuna.load_study(study_name="restart", storage=open_storage(postgres_url))
    assert rounds_of(study) == {1: 1, 2: 2, 3: 2, 4: 2}
    assert len(counted_trials(study)) == 7
    assert len([t for t in study.get_trials() if t.user_attrs.get("round") == 3]) == 2, "round 3 queued once"
    calls = Counter(agent for agent, _ in llm.requests)
    assert calls["advisor_batch"] == 3, "round 3 was not proposed again after the restart"
    assert calls["evaluator"] == 4
    run_dir = results / "restart"
    assert not (run_dir / "checkpoint.db").exists(), "checkpoints live in PostgreSQL"
    assert "Round 4" in (run_dir / "changelog.md").read_text()
    assert "guidance v1" not in log.read_text(), "the resumed driver kept --optimize-every 0"


def test_parallel_2_with_an_epoch_budget_and_two_workers_runs_to_the_end(postgres_url: str, tmp_path: Path) -> None:
    """`lgt tune --parallel 2 --epoch-budget E` with two `lgt worker`s ends, as the serial loop does (issue 19.4).

    Workers stop once E epochs were trained; a slot of the last round that
    no worker took by then is released, not waited for, and the driver ends.
    Whether the second worker takes round 2's last slot before the budget
    runs out is a race; either way the run ends with nothing left queued.
    """
    llm = ScriptedLLM()  # free proposals move x; every trial keeps the default 2 epochs
    results, log = tmp_path / "results", tmp_path / "driver.log"
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers: list[subprocess.Popen[bytes]] = []
    with serve(llm) as base_url:
        driver = start_driver(postgres_url, base_url, results, log, "--target", "synthetic:0.5", "--trials", "8",
                              "--parallel", "2", "--epoch-budget", "4", "--optimize-every", "0",
                              "--run-id", "epochs", "--proposer", "llm")
        storage = open_storage(postgres_url)
        deadline = time.monotonic() + 90
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                optuna.load_study(study_name="epochs", storage=storage)
            except KeyError:
                continue
            workers.extend(start_worker(postgres_url, "epochs", w) for w in logs)
        try:
            assert driver.wait(timeout=120) == 0, log.read_text()
        except subprocess.TimeoutExpired:
            driver.kill()
            pytest.fail(f"the driver did not end:\n{log.read_text()}")
        wait_all(workers, logs)

    study = optuna.load_study(study_name="epochs", storage=storage)
    counted = counted_trials(study)
    assert not [t for t in study.trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    assert all(t.user_attrs.get("surplus") for t in study.trials if t not in counted)
    epochs = sum(len(t.user_attrs["history"]) for t in counted)
    assert 4 <= epochs <= 6  # the budget, or over it by the one trial a second worker started alongside
    assert rounds_of(study)[1] == 1 and set(rounds_of(study)) == {1, 2} and len(counted) in (2, 3)
    assert Counter(agent for agent, _ in llm.requests)["advisor_batch"] == 1, "no round after the budget was spent"
    changelog = (results / "epochs" / "changelog.md").read_text()
    assert "Round 2" in changelog
