from __future__ import annotations

import json

import pytest
from agent_fakes import fake_llm
from pydantic import ValidationError

from agents import GradientStep, Proposal, ProposalBatch, proposal_schema, verdict_schema

KNOBS = ("lr", "dropout", "optimizer")


def test_enum_schema_only_names_real_knobs() -> None:
    schema = proposal_schema(KNOBS)
    assert issubclass(schema, Proposal)
    assert schema.model_json_schema()["$defs"]["Change"]["properties"]["knob"]["enum"] == list(KNOBS)
    ok = schema.model_validate({"changes": [{"knob": "lr", "value": 0.01, "reason": "r"}], "expected_effect": "e"})
    assert ok.changes[0].knob == "lr"
    # Parsing stays open: the graph drops an unknown knob and tells the Advisor.
    odd = schema.model_validate({"changes": [{"knob": "momentum", "value": 0.9, "reason": "r"}], "expected_effect": "e"})
    assert odd.changes[0].knob == "momentum"
    with pytest.raises(ValidationError, match="literal_error"):
        verdict_schema(KNOBS).model_validate({"is_new_best": False, "analysis": "a", "gradient": [
            {"knob": "momentum", "direction": "increase", "reason": "r", "confidence": 0.5}]})
    # The static schema stays open, for callers that do not know the space.
    assert Proposal.model_validate(
        {"changes": [{"knob": "momentum", "value": 0.9, "reason": "r"}], "expected_effect": "e"}
    )


def test_enum_schema_is_what_the_server_is_asked_to_follow() -> None:
    server, client = fake_llm("{}")
    client.structured(proposal_schema(KNOBS)).invoke("hi")
    sent = server.requests[0]["response_format"]
    assert sent["type"] == "json_object"
    assert sent["schema"]["$defs"]["Change"]["properties"]["knob"]["enum"] == list(KNOBS)

    server, client = fake_llm("{}", mode="json_schema")
    client.structured(verdict_schema(KNOBS)).invoke("hi")
    sent = server.requests[0]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    step = sent["json_schema"]["schema"]["$defs"]["GradientStep"]
    assert step["properties"]["knob"]["enum"] == list(KNOBS) and step["additionalProperties"] is False
    assert "maxLength" not in json.dumps(sent)  # OpenAI's strict mode rejects it
    assert "correction" not in json.dumps(sent)  # set by code, never asked of the model


def test_values_keep_their_json_type() -> None:
    changes = [{"knob": "x", "value": v, "reason": "r"} for v in ("adam", 3, 0.5, True)]
    proposal = Proposal.model_validate({"changes": changes, "expected_effect": "e"})
    assert [type(c.value) for c in proposal.changes] == [str, int, float, bool]
    assert ProposalBatch(proposals=[proposal]).proposals[0] == proposal


def test_gradient_step_direction_and_confidence() -> None:
    assert GradientStep(knob="lr", direction="switch to adam", reason="r", confidence=80).confidence == 0.8
    with pytest.raises(ValidationError):
        GradientStep(knob="lr", direction="sideways", reason="r", confidence=0.5)
    with pytest.raises(ValidationError):
        GradientStep(knob="lr", direction="increase", reason="r", confidence=-0.1)
