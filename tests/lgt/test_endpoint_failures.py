"""A failing LLM endpoint is said at once, and a run whose endpoint dies stops, resumable.

Real `lgt tune` processes; the endpoint is a scripted local HTTP server (or
a port nothing listens on, or a socket that never answers).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from llm_server import serve
from scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[2]


def _tune(tmp_path: Path, base_url: str, *args: str, timeout_s: str = "20") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env |= {"OPENAI_API_KEY": "sk-test-endpoint", "LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1",
            "LGT_LLM_TIMEOUT": timeout_s}
    return subprocess.run([sys.executable, "-m", "lgt", "tune", "--target", "iris", "--llm-base-url", base_url,
                           "--llm-model", "x", "--optimize-every", "0", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def _nothing_written(tmp_path: Path) -> None:
    results = tmp_path / "results"
    written = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert written == [], written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung endpoint."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize("reply, expected", [
    (500, "answers HTTP 500"),
    (404, "has no model 'x'"),
    (401, "rejected the key (HTTP 401)"),
    ("this is not json", "does not reply in the JSON shape lgt asks for"),
])
def test_a_broken_endpoint_is_one_line_before_anything_is_written(tmp_path: Path, reply: object,
                                                                  expected: str) -> None:
    with serve(ScriptedLLM(preflight=[reply] * 5)) as base_url:  # type: ignore[list-item]
        proc = _tune(tmp_path, base_url, "--trials", "2")
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines()[-1].startswith("lgt: error: the LLM endpoint")
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert "sk-test-endpoint" not in proc.stderr
    _nothing_written(tmp_path)


def test_an_endpoint_nobody_listens_on_or_that_hangs_is_one_line_in_seconds(tmp_path: Path) -> None:
    proc = _tune(tmp_path, f"http://127.0.0.1:{_free_port()}/v1", "--trials", "2")
    assert proc.returncode == 2 and "cannot be reached; check --llm-base-url" in proc.stderr, proc.stderr[-1500:]
    _nothing_written(tmp_path)
    with _silent_server() as base_url:
        proc = _tune(tmp_path, base_url, "--trials", "2", timeout_s="1")
    assert proc.returncode == 2 and "did not answer in time" in proc.stderr, proc.stderr[-1500:]
    _nothing_written(tmp_path)


def test_a_run_whose_endpoint_dies_stops_and_resumes_once_it_is_back(tmp_path: Path) -> None:
    dying = ScriptedLLM(chooser=[500] * 9)  # the Advisor fails three rounds in a row (each call and its retries)
    with serve(dying) as base_url:
        proc = _tune(tmp_path, base_url, "--trials", "6", "--run-id", "dies")
    assert proc.returncode == 2, proc.stderr[-1500:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "the LLM failed in the last 3 rounds" in last and "lgt tune --resume dies" in last
    storage = f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    study = optuna.load_study(study_name="dies", storage=storage)
    assert [t.user_attrs["source"] for t in study.trials] == ["default", "fallback", "fallback", "fallback"]

    with serve(ScriptedLLM()) as base_url:  # the endpoint is back
        proc = _tune(tmp_path, base_url, "--resume", "dies")
    assert proc.returncode == 0, proc.stderr[-1500:]
    study = optuna.load_study(study_name="dies", storage=storage)
    assert len(study.trials) == 6 and study.trials[-1].user_attrs["source"] != "fallback"
    summary = json.loads((tmp_path / "results" / "dies" / "summary.json").read_text())
    assert summary["fallback_rounds"] == 3 and summary["rounds"] == 6
    assert "| fell back to TPE | 3 of 6 rounds" in (tmp_path / "results" / "dies" / "report.md").read_text()


def test_on_llm_failure_tpe_carries_on_with_tpe(tmp_path: Path) -> None:
    with serve(ScriptedLLM(chooser=[500] * 30)) as base_url:
        proc = _tune(tmp_path, base_url, "--trials", "5", "--run-id", "carries", "--on-llm-failure", "tpe")
    assert proc.returncode == 0, proc.stderr[-1500:]
    summary = json.loads((tmp_path / "results" / "carries" / "summary.json").read_text())
    assert summary["trials_run"] == 5 and summary["fallback_rounds"] == 4


def test_resuming_a_run_with_the_other_kind_of_method_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    env |= {"LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "lgt", "baseline", "--target", "iris", "--method", "random",
                          "--trials", "2", "--run-id", "base"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "base").iterdir()}
    with serve(ScriptedLLM()) as base_url:
        proc = _tune(tmp_path, base_url, "--resume", "base")
    assert proc.returncode == 2 and "is a random baseline, not an LGT run" in proc.stderr, proc.stderr[-1500:]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "results" / "base").iterdir()} == before
    storage = f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    assert len(optuna.load_study(study_name="base", storage=storage).trials) == 2

    with serve(ScriptedLLM()) as base_url:
        assert _tune(tmp_path, base_url, "--trials", "2", "--run-id", "agents").returncode == 0
    proc = subprocess.run([sys.executable, "-m", "lgt", "baseline", "--target", "iris", "--method", "tpe",
                           "--resume", "agents"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 2 and "is an LGT run (lgt), not a baseline" in proc.stderr, proc.stderr
