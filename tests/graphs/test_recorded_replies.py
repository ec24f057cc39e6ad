"""Real SmolLM2-135M replies, replayed: the change log they produce holds no false or garbage sentence.

Each fixture in tests/fixtures/smollm2/ is every reply the embedded model
gave in a real `lgt tune` run on digits (the transcript's raw replies, in
order, by agent), recorded with tests/fixtures/smollm2/record.py. Replaying
them through the scripted server re-runs the same rounds; the test then
reads the change log as a user would: no reason that contradicts its
change, no text that is not words, no garbage guidance.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scripted_llm import SECRET, ScriptedLLM

from agents.wording import check_guidance, contradictions, word_problems
from lgt.tune import TuneRequest, run_tune
from tuning_targets import make_target

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "smollm2"
BY_LGT = "(by lgt, from the evidence)"
KNOBS = {k["name"]: k for k in make_target("digits").space.describe()}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def _value(cell: str) -> object:
    try:
        return json.loads(cell)
    except json.JSONDecodeError:
        return cell


def problems_in(changelog: str) -> list[str]:
    """Every sentence of the change log an LLM wrote that a reader would find false or not words."""
    found = []
    for line in changelog.splitlines():
        row = re.fullmatch(r"\| (\w+) \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|", line)
        if row and row.group(1) in KNOBS:
            knob, old, new, reason = row.group(1), _value(row.group(2)), _value(row.group(3)), row.group(4)
            if reason != "-" and not reason.startswith(BY_LGT):
                found += [f"{knob}: {p}" for p in contradictions(reason, {knob: (old, new)}, KNOBS)]
                found += [f"{knob}: {p}" for p in word_problems(reason, max_chars=200, knobs=list(KNOBS))]
        for head in ("**Why (the Advisor):** ", "**Expected:** ", "**Verdict:** new best. ",
                     "**Verdict:** not better than the best so far. "):
            if line.startswith(head):
                text = line.removeprefix(head)
                if text and not text.startswith(("(no verdict", BY_LGT)):
                    found += [f"{head.strip()} {p}: {text}" for p in word_problems(text, max_chars=300, knobs=list(KNOBS))]
        step = re.fullmatch(r"- `(\w+)`: (.+?) \(confidence [\d.]+\) - (.*)", line)
        if step and not step.group(3).startswith(BY_LGT):
            found += [f"gradient {step.group(1)}: {p}" for p in word_problems(step.group(3), max_chars=200,
                                                                          knobs=list(KNOBS))]
        guidance = re.fullmatch(r"\*\*Guidance rewritten \(v\d+\):\*\* (.*)", line)
        if guidance:
            found += [f"guidance: {p}" for p in check_guidance(guidance.group(1), KNOBS, max_chars=400)]
    return found


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_a_recorded_run_renders_a_change_log_with_no_false_or_garbage_sentence(tmp_path: Path, fixture: Path) -> None:
    recorded = json.loads(fixture.read_text())
    llm = ScriptedLLM(**{agent: list(replies) for agent, replies in recorded["replies"].items()})
    summary = run_tune(TuneRequest(target=recorded["target"], trials=recorded["trials"], seed=recorded["seed"],
                                   method=recorded["method"], optimize_every=recorded["optimize_every"],
                                   storage=f"sqlite:///{tmp_path / 'studies.db'}", llm_base_url="http://llm.test/v1"),
                       client_factory=llm.factory())
    changelog = Path(str(summary["changelog"])).read_text()
    assert changelog.count("## Round") == recorded["trials"]
    assert problems_in(changelog) == []
    # The model's replies were used, not the script's defaults: its own words reach the change log or its notes.
    assert sum(len(v) for v in recorded["replies"].values()) - sum(
        len(getattr(llm, agent)) for agent in recorded["replies"]) >= recorded["trials"]


def test_the_reader_finds_what_the_checks_exist_for() -> None:
    """The test above is only as good as its reader: on yesterday's change log it finds the nonsense."""
    yesterday = """\
| learning_rate | 0.01 | 0.1 | decrease learning rate | - |
| momentum | 0.9 | 0.3 | .*/48 | - |
**Expected:** 1.97; max-loss: 0.256; best eval: 0.2;
**Guidance rewritten (v1):** ][
- `optimizer`: decrease (confidence 0.50) - .*"""
    found = problems_in(yesterday)
    assert any("learning_rate: says decrease" in p for p in found)
    assert any(p.startswith("momentum:") for p in found)
    assert any(p.startswith("**Expected:**") for p in found)
    assert any(p.startswith("guidance:") for p in found)
    assert any(p.startswith("gradient optimizer:") for p in found)
