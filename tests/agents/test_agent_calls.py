"""The three agents against a scripted server: parsing, retry, failure, secrecy."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from agent_fakes import ACCURACY, SECRET, completion, fake_llm, space, trial

from agents import Advisor, AgentFailure, Evaluator, Optimizer, Proposal, Transcript, Verdict
from lgt.errors import UserError

GOOD_PROPOSAL = json.dumps(
    {
        "changes": [{"knob": "dropout", "value": 0.3, "reason": "val loss rises after epoch 6 while train loss falls"}],
        "expected_effect": "smaller gap, val accuracy above 0.94",
    }
)
GOOD_VERDICT = json.dumps(
    {
        "is_new_best": True,
        "analysis": "Higher dropout closed the gap.",
        "gradient": [
            {"knob": "weight_decay", "direction": "increase", "reason": "gap still grows late", "confidence": 0.6}
        ],
    }
)
GOOD_GUIDANCE = json.dumps(
    {"guidance": "Keep lr below 0.05; it diverged at 0.3.", "reason_for_change": "trial 2 diverged"}
)
TRIALS = [
    trial(0, 0.91, source="default"),
    trial(1, 0.93, {"lr": 0.05}),
    trial(2, None, {"lr": 0.3}, status="failed", fail_reason="loss became NaN at epoch 2"),
]


def test_advisor_parses_a_good_reply_and_sees_the_whole_picture(tmp_path: Path) -> None:
    server, client = fake_llm(GOOD_PROPOSAL)
    transcript = Transcript(tmp_path / "t.jsonl")
    guidance = "Prefer regularisation over capacity."
    gradient = Verdict.model_validate_json(GOOD_VERDICT)

    proposal = Advisor(client, transcript).propose(
        space(), TRIALS, ACCURACY, gradient, guidance, ["that config was already run"]
    )

    assert isinstance(proposal, Proposal) and proposal.changes[0].knob == "dropout" and proposal.changes[0].value == 0.3
    prompt = server.prompt()
    for expected in (
        "maximize val accuracy",
        "- label_smoothing (training, float) [0.0, 0.2]",
        "#1 (advisor) val accuracy 0.93 | lr=0.05",
        "#2 (advisor) FAILED (loss became NaN at epoch 2)",
        "weight_decay: increase (confidence 0.6)",
        guidance,
        "- that config was already run",
    ):
        assert expected in prompt
    [call] = transcript.read()
    assert call["agent"] == "advisor" and call["parsed"]["changes"][0]["knob"] == "dropout"
    assert call["prompt_tokens"] == 321 and call["completion_tokens"] == 45 and call["error"] is None
    assert not call["fallback"] and call["raw"] == GOOD_PROPOSAL


def test_advisor_prompt_stays_small_for_17_knobs_and_6_trials() -> None:
    server, client = fake_llm(GOOD_PROPOSAL)
    trials = [
        *TRIALS,
        trial(3, 0.94, {"lr": 0.05, "dropout": 0.2}),
        trial(4, 0.935, {"width": 64}),
        trial(5, 0.945, {"dropout": 0.3}),
    ]
    gradient = Verdict.model_validate_json(GOOD_VERDICT)
    Advisor(client, Transcript(None)).propose(
        space(), trials, ACCURACY, gradient, "Keep lr below 0.05.\n" * 3, "knob 'foo' is unknown"
    )
    # SmolLM2's tokenizer gives ~3 characters per token on this text: 7,000 chars stay well under 2,500 tokens.
    assert len(server.prompt()) < 7000


def test_evaluator_parses_and_the_numbers_decide_is_new_best(tmp_path: Path) -> None:
    wrong = json.dumps(json.loads(GOOD_VERDICT) | {"is_new_best": False})
    server, client = fake_llm(GOOD_VERDICT, wrong)
    evaluator = Evaluator(client, Transcript(tmp_path / "t.jsonl"))
    best, better, worse = trial(1, 0.93, {"lr": 0.05}), trial(3, 0.95, {"dropout": 0.3}), trial(4, 0.90, {"width": 16})

    worse_verdict = evaluator.judge(space(), worse, best, ACCURACY)
    assert not worse_verdict.is_new_best  # the model said True; 0.90 < 0.93, and arithmetic is code's
    assert "0.9 vs best 0.93" in server.prompt(0) and "not a new best" in server.prompt(0)
    assert worse_verdict.gradient[0].knob == "weight_decay" and worse_verdict.gradient[0].confidence == 0.6
    assert "is_new_best" not in json.dumps(server.requests[0]["response_format"])  # never asked of the model

    better_verdict = evaluator.judge(space(), better, best, ACCURACY)
    assert better_verdict.is_new_best  # the model said False
    assert "flags:" in server.prompt(1)  # the code-computed diagnostics reach the model


def test_optimizer_guidance_reaches_the_next_advisor_prompt(tmp_path: Path) -> None:
    server, client = fake_llm(GOOD_GUIDANCE, GOOD_PROPOSAL)
    transcript = Transcript(tmp_path / "t.jsonl")

    odd = trial(3, float("nan"), {"dropout": 0.5})  # completed without a usable score
    guidance = Optimizer(client, transcript).rewrite(["Try anything."], [*TRIALS, odd], ACCURACY)
    assert (
        "#1 (advisor) lr=0.05 (why: testing whether lr helps) -> val accuracy 0.93: NEW BEST (+0.02)"
        in server.prompt(0)
    )
    assert "Try anything." in server.prompt(0) and "#3 (advisor) dropout=0.5" in server.prompt(0)

    Advisor(client, transcript).propose(space(), TRIALS, ACCURACY, None, guidance.guidance)
    assert "Keep lr below 0.05; it diverged at 0.3." in server.prompt(1)
    assert [r["agent"] for r in transcript.read()] == ["optimizer", "advisor"]


def test_malformed_reply_is_retried_once_with_the_parse_error(tmp_path: Path) -> None:
    server, client = fake_llm('{"changes": [{"knob": "dropout", "value": 0.3', GOOD_PROPOSAL)
    transcript = Transcript(tmp_path / "t.jsonl")

    proposal = Advisor(client, transcript).propose(space(), TRIALS, ACCURACY)

    assert proposal.changes[0].knob == "dropout"
    retry = server.messages(1)
    assert retry[:2] == server.messages(0)
    assert retry[2] == {"role": "assistant", "content": '{"changes": [{"knob": "dropout", "value": 0.3'}
    assert "not valid JSON" in retry[3]["content"]
    first, second = transcript.read()
    assert (first["attempt"], first["parsed"], second["attempt"]) == (1, None, 2)
    assert "not valid JSON" in first["error"] and second["error"] is None and not second["fallback"]


def test_unknown_knob_reaches_the_caller_in_one_call() -> None:
    odd = json.dumps({"changes": [{"knob": "learning_rate", "value": 0.1, "reason": "r"}], "expected_effect": "e"})
    server, client = fake_llm(odd)
    proposal = Advisor(client, Transcript(None)).propose(space(), TRIALS, ACCURACY)
    assert [c.knob for c in proposal.changes] == ["learning_rate"] and len(server.requests) == 1


def test_two_bad_replies_raise_agent_failure_and_both_are_recorded(tmp_path: Path) -> None:
    truncated = completion('{"changes": [', finish_reason="length")
    _, client = fake_llm("Sure! I would raise the learning rate.", truncated)
    transcript = Transcript(tmp_path / "t.jsonl")

    with pytest.raises(AgentFailure) as caught:
        Advisor(client, transcript).propose(space(), TRIALS, ACCURACY)

    assert caught.value.agent == "advisor" and caught.value.attempts == 2
    assert "cut off at the token limit" in str(caught.value)
    first, second = transcript.read()
    assert first["raw"] == "Sure! I would raise the learning rate." and "no JSON object" in first["error"]
    assert second["raw"] == '{"changes": [' and not first["fallback"] and second["fallback"]


@pytest.mark.parametrize(
    ("script", "max_retries", "error"),
    [
        ([500, 500], 1, "Error code: 500"),
        ([httpx.ReadTimeout("timed out")], 0, "TimeoutError"),
        ([httpx.ConnectError("connection refused")], 0, "ConnectionError"),
    ],
)
def test_server_failures_become_agent_failures(
    tmp_path: Path, script: list[object], max_retries: int, error: str
) -> None:
    server, client = fake_llm(*script, max_retries=max_retries)  # type: ignore[arg-type]
    transcript = Transcript(tmp_path / "t.jsonl")

    with pytest.raises(AgentFailure, match=error) as caught:
        Evaluator(client, transcript).judge(space(), TRIALS[1], TRIALS[0], ACCURACY)

    assert len(server.requests) == len(script)  # the openai client retried, we did not
    [call] = transcript.read()
    assert error in call["error"] and call["fallback"] and call["raw"] is None
    assert SECRET not in str(caught.value)


def test_rejected_key_is_a_user_error_not_a_silent_fallback(tmp_path: Path) -> None:
    _, client = fake_llm(401)
    with pytest.raises(UserError, match="AuthenticationError") as caught:
        Optimizer(client, Transcript(tmp_path / "t.jsonl")).rewrite([], TRIALS, ACCURACY)
    assert SECRET not in str(caught.value)


def test_api_key_never_reaches_transcript_or_errors(tmp_path: Path) -> None:
    leaky = json.dumps({"guidance": f"use {SECRET}", "reason_for_change": "r"})
    server, client = fake_llm(leaky, f"echo {SECRET}", f"echo {SECRET} again", 500)
    transcript = Transcript(tmp_path / "t.jsonl")
    optimizer = Optimizer(client, transcript)

    optimizer.rewrite([f"guidance that quotes {SECRET}"], TRIALS, ACCURACY)
    with pytest.raises(AgentFailure) as bad_replies:
        optimizer.rewrite([], TRIALS, ACCURACY)
    with pytest.raises(AgentFailure) as server_error:
        optimizer.rewrite([], TRIALS, ACCURACY)

    assert server.requests[0]["messages"]  # the key really was in play
    written = (tmp_path / "t.jsonl").read_text()
    assert len(transcript.read()) == 4 and "[REDACTED]" in written
    assert SECRET not in written and "SECRET123" not in written
    assert SECRET not in str(bad_replies.value) and SECRET not in str(server_error.value)
