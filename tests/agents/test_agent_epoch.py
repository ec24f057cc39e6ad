"""The agents' in-run role: judging a curve after an epoch, adjusting dynamic knobs for the next."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import ACCURACY, DEFAULT_CONFIG, MAE, fake_llm, history, space

from agents import (
    Advisor,
    AgentFailure,
    EpochProposal,
    EpochVerdict,
    Evaluator,
    Transcript,
    alarms,
    diagnose_epoch,
    epoch_proposal_schema,
    epoch_verdict_schema,
)
from agents.diagnostics import epoch_flags

DYNAMIC = ("lr", "momentum", "weight_decay", "label_smoothing", "grad_clip", "dropout", "augment")
SICK = json.dumps({"healthy": False, "analysis": "Training loss rose in the last epoch.", "gradient": [
    {"knob": "lr", "direction": "decrease", "reason": "train loss went up at lr 0.3", "confidence": 0.8}]})
HEALTHY = json.dumps({"healthy": True, "analysis": "Both losses fall steadily.", "gradient": []})
LOWER = json.dumps({"changes": [{"knob": "lr", "value": 0.03, "reason": "train loss rose"}],
                    "expected_effect": "training loss falls again"})


def dynamic_space() -> list[dict[str, Any]]:
    """The 17-knob fake space with the issue's dynamic knobs marked."""
    return [knob | {"dynamic": knob["name"] in DYNAMIC} for knob in space()]


def run_record(train_loss: list[float], val_loss: list[float], val_metric: list[float], **extra: Any) -> dict[str, Any]:
    return {"config": DEFAULT_CONFIG | {"lr": 0.3}, "history": history(val_metric, train_loss, val_loss),
            "epochs": 10, "start_loss": 2.3, "schedule": [], "status": "complete", **extra}


IMPROVING = run_record([1.9, 1.2, 0.8], [1.7, 1.1, 0.9], [0.55, 0.71, 0.80])
RISING = run_record([1.9, 1.2, 1.6], [1.7, 1.1, 1.5], [0.55, 0.71, 0.62])


# --- diagnostics ------------------------------------------------------------------------------------------

def test_epoch_diagnostics_see_a_rising_loss_from_the_first_epoch_on() -> None:
    assert alarms(diagnose_epoch(IMPROVING, ACCURACY)) == []
    rising = diagnose_epoch(RISING, ACCURACY)
    assert rising["train_loss_rising"] and rising["val_worsening"]
    assert rising["last_metric_change"] == pytest.approx(-0.09)
    assert alarms(rising) == ["train loss rising"]
    assert epoch_flags(rising) == ["train loss rising", "val worsening"]
    # One epoch in, the untrained model's loss is the yardstick: 3.1 > 2.3 means the updates hurt.
    assert diagnose_epoch(run_record([3.1], [2.9], [0.1]), ACCURACY)["train_loss_rising"]
    assert not diagnose_epoch(run_record([2.0], [1.9], [0.3]), ACCURACY)["train_loss_rising"]
    assert not diagnose_epoch(run_record([2.0], [1.9], [0.3], start_loss=None), ACCURACY)["train_loss_rising"]
    nan = diagnose_epoch(run_record([1.0, float("nan")], [1.0, float("nan")], [0.5, 0.1]), ACCURACY)
    assert "diverged" in alarms(nan)
    # For a minimised metric a rise is the worse direction.
    mae = diagnose_epoch(run_record([1.0, 0.9], [1.0, 1.2], [30.0, 35.0]), MAE)
    assert mae["val_worsening"] and not mae["train_loss_rising"]


# --- schemas ----------------------------------------------------------------------------------------------

def test_epoch_schemas_offer_only_the_dynamic_knobs_and_allow_no_change() -> None:
    proposal = epoch_proposal_schema(DYNAMIC)
    assert issubclass(proposal, EpochProposal)
    schema = proposal.model_json_schema()
    assert schema["$defs"]["Change"]["properties"]["knob"]["enum"] == list(DYNAMIC)
    assert "minItems" not in schema["properties"]["changes"]
    assert proposal.model_validate({"changes": [], "expected_effect": "carry on"}).changes == []
    # Parsing stays open so the loop can refuse a structural knob with its reason.
    odd = proposal.model_validate({"changes": [{"knob": "batch_size", "value": 32, "reason": "r"}],
                                   "expected_effect": "e"})
    assert odd.changes[0].knob == "batch_size"
    verdict = epoch_verdict_schema(DYNAMIC)
    assert issubclass(verdict, EpochVerdict)
    assert verdict.model_json_schema()["$defs"]["GradientStep"]["properties"]["knob"]["enum"] == list(DYNAMIC)
    assert "correction" not in json.dumps(verdict.model_json_schema())
    # Titles keep the scripted whole-loop server able to tell the agents apart.
    assert "Verdict" in verdict.model_json_schema()["title"] and "Proposal" in schema["title"]


# --- Evaluator --------------------------------------------------------------------------------------------

def test_evaluator_reads_the_curve_and_the_dynamic_knobs_only(tmp_path: Path) -> None:
    server, client = fake_llm(HEALTHY)
    transcript = Transcript(tmp_path / "t.jsonl")
    verdict = Evaluator(client, transcript).judge_epoch(dynamic_space(), IMPROVING, ACCURACY)
    assert verdict.healthy and verdict.correction is None and verdict.gradient == []
    prompt = server.prompt()
    for expected in ("epoch 3 of 10 done; values lr=0.3", "- lr [0.0001, 0.3] log-scale",
                     "epoch 3: train loss 0.8, val loss 0.9, val accuracy 0.8, lr 0.01",
                     "last epoch moved the metric +0.09", "flags: still improving", "(no changes yet)"):
        assert expected in prompt
    for structural in ("batch_size", "depth", "optimizer"):
        assert f"- {structural} " not in prompt and f"{structural}=" not in prompt
    sent = server.requests[0]["response_format"]["schema"]
    assert sent["$defs"]["GradientStep"]["properties"]["knob"]["enum"] == list(DYNAMIC)
    assert len(prompt) < 2500  # a few hundred tokens: the embedded model reads it in seconds
    [call] = transcript.read()
    assert call["agent"] == "evaluator" and call["parsed"]["healthy"] is True


def test_a_healthy_verdict_on_a_rising_loss_is_overruled_by_the_numbers() -> None:
    server, client = fake_llm(HEALTHY)
    verdict = Evaluator(client, Transcript(None)).judge_epoch(dynamic_space(), RISING, ACCURACY)
    assert not verdict.healthy
    assert verdict.correction is not None and "train loss rising" in verdict.correction
    assert "train loss rising" in server.prompt()


def test_evaluator_failure_is_an_agent_failure() -> None:
    _, client = fake_llm("no idea", "still no idea")
    with pytest.raises(AgentFailure):
        Evaluator(client, Transcript(None)).judge_epoch(dynamic_space(), RISING, ACCURACY)


# --- Advisor ----------------------------------------------------------------------------------------------

def test_advisor_proposes_a_change_for_the_next_epoch(tmp_path: Path) -> None:
    server, client = fake_llm(LOWER)
    verdict = EpochVerdict.model_validate_json(SICK)
    schedule = [{"epoch": 2, "changes": {"dropout": 0.2}, "kept": False, "val_metric_with": 0.70,
                 "val_metric_without": 0.71, "refused": [{"knob": "batch_size", "value": 32, "reason": "structural"}]}]
    record = RISING | {"schedule": schedule}
    proposal = Advisor(client, Transcript(tmp_path / "t.jsonl")).adjust(
        dynamic_space(), record, ACCURACY, verdict, guidance="Keep lr below 0.1.",
        feedback=["batch_size=32 refused: structural knob batch_size cannot change inside a run"])
    assert [(c.knob, c.value) for c in proposal.changes] == [("lr", 0.03)]
    prompt = server.prompt()
    for expected in ("lr: decrease (confidence 0.8): train loss went up at lr 0.3",
                     "epoch 2: dropout=0.2 (dropped: val 0.7 with vs 0.71 without); refused batch_size",
                     "Keep lr below 0.1.", "- batch_size=32 refused: structural knob batch_size",
                     "trained with and without it", "flags: train loss rising, val worsening"):
        assert expected in prompt
    assert len(prompt) < 3000


def test_an_empty_change_list_is_a_valid_no_change_and_unchecked_runs_are_told_so() -> None:
    server, client = fake_llm(json.dumps({"changes": [], "expected_effect": "the curve is fine"}))
    proposal = Advisor(client, Transcript(None)).adjust(dynamic_space(), IMPROVING, ACCURACY, checked=False)
    assert proposal.changes == []
    assert "applied as is" in server.prompt() and "(none yet)" in server.prompt()
