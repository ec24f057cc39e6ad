"""Menu mode: the agents pick from closed lists, read from the model's probabilities; no schema holds free text.

Only the server is scripted: the real client sends the real requests, and
the scoring route's answers are the log-probabilities a model would give.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import ACCURACY, fake_llm, history, space, trial
from pydantic import BaseModel

from agents import Advisor, Evaluator, Optimizer, Transcript, scoring
from agents.diagnostics import diagnose
from agents.menus import remedy_menu, rules_menu
from agents.schemas import (
    directions,
    letters_schema,
    menu_batch_schema,
    menu_epoch_verdict_schema,
    menu_proposal_schema,
)

LINES = ["lr 0.01 -> 0.02 | TPE's next pick", "dropout 0 -> 0.2 | from TPE's good region",
         "epochs 10 -> 20 | the Evaluator's gradient", "width 32 -> 64 | from TPE's good region"]


def scored(*questions: tuple[float, ...]) -> dict[str, Any]:
    """The scoring route's answer giving each question's options these probabilities."""
    return {"answers": [{"logprobs": [math.log(p) for p in probabilities], "tokens": [1] * len(probabilities)}
                        for probabilities in questions], "prompt_tokens": 120,
            "timings": {"prompt_n": 60, "prompt_ms": 30.0}}


def test_the_pick_is_the_letter_the_model_prefers_once_its_position_prior_is_divided_out(tmp_path: Path) -> None:
    # Shown in order C, A, D, B (position -> candidate 2, 0, 3, 1); the model puts most mass on the first letter
    # whatever it shows, as its prior says, but more than that on the third: candidate 3 is the pick.
    server, client = fake_llm(scored((0.6, 0.1, 0.2, 0.1)))
    choice = Advisor(client, Transcript(tmp_path / "t.jsonl"), "menu").pick(
        space(), [trial(0, 0.8, source="default")], ACCURACY, LINES, order=[2, 0, 3, 1],
        position_prior=[0.7, 0.1, 0.1, 0.1])
    assert choice.pick == 3 and choice.reason == "" and choice.expected_effect == ""
    scores = choice.scores or {}
    assert scores["mode"] == "scored" and scores["shown"] == [2, 0, 3, 1]
    assert scores["preference"][3] == max(scores["preference"])
    request = server.requests[0]
    assert request["questions"] == [{"answer": '{"pick": "', "options": ["A", "B", "C", "D"]}]
    prompt = "\n".join(m["content"] for m in request["messages"])
    assert "A: epochs 10 -> 20" in prompt and "C: width 32 -> 64" in prompt
    assert "response_format" not in request  # nothing is written, so there is nothing to hold free text


def test_a_first_pick_seeds_the_prior_with_the_candidates_hidden_and_a_cause_is_read_after_the_pick(
        tmp_path: Path) -> None:
    server, client = fake_llm(scored((0.5, 0.3, 0.1, 0.1), (0.2, 0.8)), scored((0.8, 0.1, 0.05, 0.05)))
    choice = Advisor(client, Transcript(tmp_path / "t.jsonl"), "menu").pick(
        space(), [trial(0, 0.8, source="default")], ACCURACY, LINES, order=[0, 1, 2, 3],
        causes=["overfitting", "plateau"])
    assert "(details hidden)" in server.prompt(1) and "(details hidden)" not in server.prompt(0)
    assert (choice.scores or {})["seed_prior"] == pytest.approx([0.8, 0.1, 0.05, 0.05])
    assert choice.pick == 1  # 0.3/0.1 beats 0.5/0.8 and 0.1/0.05
    assert server.requests[0]["questions"][1] == {"answer": '{"acts on": "', "options": ["overfitting", "plateau"]}
    assert choice.cause == "plateau" and len(server.requests) == 2  # the cause came with the pick, one request
    transcript = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(transcript) == 2 and all(r["agent"] == "advisor" and r["prompt_evaluated"] == 60 for r in transcript)


def test_an_endpoint_that_cannot_score_writes_its_pick_from_the_letters(tmp_path: Path) -> None:
    server, client = fake_llm(404, json.dumps({"picks": ["B"]}))
    choice = Advisor(client, Transcript(None), "menu").pick(
        space(), [trial(0, 0.8, source="default")], ACCURACY, LINES, order=[3, 2, 1, 0], position_prior=[0.25] * 4)
    assert choice.pick == 2 and (choice.scores or {})["mode"] == "generated"
    schema = server.requests[1]["response_format"]["schema"]
    assert schema["properties"]["picks"]["items"]["enum"] == ["A", "B", "C", "D"]


def overfit_trial(number: int, val: float, changes: dict[str, Any]) -> dict[str, Any]:
    record = trial(number, val, changes)
    record["history"] = history([0.80, 0.88, 0.91, 0.90, 0.89], [1.20, 0.60, 0.30, 0.15, 0.08],
                                [0.90, 0.50, 0.35, 0.42, 0.55])
    record["val_metric"] = 0.91
    return record


def test_the_evaluator_reads_outcome_problem_and_steps_from_remedies_the_playbook_backs(tmp_path: Path) -> None:
    best = trial(0, 0.95, source="default")
    newest = overfit_trial(1, 0.91, {"dropout": 0.3})
    facts = diagnose(newest, ACCURACY)
    menu = remedy_menu(space(), ["no gain", "overfitting"], newest, best)
    assert {"knob": "dropout", "direction": "decrease", "cause": "no gain"} in menu
    assert {"knob": "weight_decay", "direction": "increase", "cause": "overfitting"} in menu
    assert all(m["cause"] in ("no gain", "overfitting") for m in menu) and len(menu) <= 8
    order = scoring.shuffled(len(menu), 7)
    wanted = menu.index({"knob": "weight_decay", "direction": "increase", "cause": "overfitting"})
    letters = [0.05] * len(menu)
    letters[order.index(wanted)] = 0.6
    server, client = fake_llm(scored(tuple(letters), (0.3, 0.7)), scored(tuple([1 / len(menu)] * len(menu))))
    verdict = Evaluator(client, Transcript(None), "menu").judge(space(), newest, best, ACCURACY, facts,
                                                             order_seed=7)
    assert verdict.analysis == "" and verdict.outcome == "no gain" and verdict.diagnosis == "overfitting"
    assert [(s.knob, s.direction, s.cause) for s in verdict.gradient] == [("weight_decay", "increase", "overfitting")]
    assert all(s.reason == "" and s.confidence is None for s in verdict.gradient)
    questions = server.requests[0]["questions"]
    assert [q["answer"] for q in questions] == ['{"steps": ["', '{"outcome": "']
    assert questions[1]["options"] == ["improved", "no gain"]
    assert "Problems the numbers show: overfitting" in server.prompt(0) and "(details hidden)" in server.prompt(1)


def test_the_optimizer_picks_rules_the_record_backs(tmp_path: Path) -> None:
    record = [trial(0, 0.80, source="default"), overfit_trial(1, 0.91, {"dropout": 0.3}),
              trial(2, None, {"lr": 0.3}, status="failed", fail_reason="loss diverged")]
    menu = rules_menu(space(), record, ACCURACY)
    assert {"shape": "prefer", "knob": "weight_decay", "direction": "increase", "when": "overfitting"} in menu
    assert {"shape": "avoid", "knob": "lr", "trial": 2} in menu
    assert {"shape": "keep", "knob": "dropout", "trial": 1} in menu
    letters = [0.01] * len(menu)
    letters[scoring.shuffled(len(menu), 5).index(menu.index({"shape": "avoid", "knob": "lr", "trial": 2}))] = 0.9
    _, client = fake_llm(scored(tuple(letters)), scored(tuple([1 / len(menu)] * len(menu))))
    guidance = Optimizer(client, Transcript(None), "menu").rewrite([], record, ACCURACY, space=space(), order_seed=5)
    assert guidance.guidance == "" and guidance.rules is not None
    assert guidance.rules[0] == {"shape": "avoid", "knob": "lr", "trial": 2}


@pytest.mark.parametrize("schema", [
    menu_proposal_schema(("lr", "dropout"), ("overfitting",)),
    menu_proposal_schema(("lr",), (), epoch=True),
    menu_batch_schema(("lr", "dropout"), ("plateau",), 3),
    menu_epoch_verdict_schema(("lr",), directions(space()), ("plateau", "unstable"), ("plateau",)),
    letters_schema(("A", "B", "C"), 2),
])
def test_no_menu_schema_holds_free_text(schema: type[BaseModel]) -> None:
    def strings(node: Any, path: str) -> list[str]:
        if isinstance(node, dict):
            free = [path] if node.get("type") == "string" and not {"enum", "const"} & node.keys() else []
            return free + [p for k, v in node.items() for p in strings(v, f"{path}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in strings(v, f"{path}[{i}]")]
        return []

    found = strings(schema.model_json_schema(), "")
    # A value is a number, a boolean or a listed choice's text; it is validated against the knob's range.
    assert [p for p in found if not p.endswith(".value.anyOf[0]")] == []
