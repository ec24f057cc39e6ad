"""The whole LGT loop in menu mode on a small real target, with only the LLM's scoring route scripted.

No agent writes a sentence: every call reads probabilities over a menu, and
every sentence in the change log is code's, from the picks, naming a knob
or something a reader can observe.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from scripted_llm import SECRET, ScriptedLLM

from agents.wording import says_nothing
from lgt.tune import TuneRequest, run_tune
from tuning_targets import make_target

KNOBS = list(make_target("iris").space.knobs)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def _run(tmp_path: Path, llm: ScriptedLLM, trials: int = 6) -> tuple[dict[str, Any], optuna.Study]:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    summary = run_tune(TuneRequest(target="iris", trials=trials, storage=storage, llm_base_url="http://llm.test/v1",
                                   optimize_every=2, words="menu", seed=3), client_factory=llm.factory())
    return summary, optuna.load_study(study_name=str(summary["study_name"]), storage=storage)


def _prefers_the_good_region(body: dict[str, Any]) -> list[float]:
    """A model that likes TPE's good region, wherever the shuffle shows it."""
    options = body["options"]
    if body["answer"] != '{"pick": "':
        return [0.0] * len(options)
    shown = "\n".join(m["content"] for m in body["messages"])
    liked = [f"{o}:" in shown and "good region" in shown.split(f"\n{o}: ")[-1].split("\n")[0] for o in options]
    return [math.log(0.7) if like else math.log(0.1) for like in liked]


def test_a_menu_run_writes_only_code_sentences_that_name_a_knob_or_an_observation(tmp_path: Path) -> None:
    llm = ScriptedLLM()
    llm.score = _prefers_the_good_region  # type: ignore[method-assign]
    summary, study = _run(tmp_path, llm)
    assert len(study.trials) == 6
    transcript = [json.loads(line) for line in Path(str(summary["transcript"])).read_text().splitlines()]
    agents = {r["agent"] for r in transcript}
    assert agents <= {"advisor", "evaluator", "optimizer"} and {"advisor", "evaluator", "optimizer"} <= agents
    # Read from probabilities, none written: each call asked its questions of the scoring route.
    assert all(all("logprobs" in question for question in json.loads(r["raw"])) for r in transcript)
    assert not any(body.get("response_format") for agent, body in llm.requests if agent != "preflight")

    departed = [t for t in study.trials if t.user_attrs.get("departed")]
    assert departed, "a model preferring TPE's good region departs from candidate 0 (the first two are free)"
    for trial in departed:
        choice = trial.user_attrs["evidence"]["choice"]
        assert choice["mode"] == "scored" and choice["preference"][trial.user_attrs["pick"]] == max(choice["preference"])
        assert trial.user_attrs["evidence"]["option"]["origin"] == "region"

    changelog = Path(str(summary["changelog"])).read_text()
    texts = re.findall(r"^\*\*(?:Why \(the Advisor\)|Expected|Verdict):\*\* (.+)$", changelog, re.MULTILINE)
    texts += re.findall(r"^- `\w+`: [^-]+ - (.+)$", changelog, re.MULTILINE)
    assert len(texts) >= 12
    for text in texts:
        assert says_nothing(text, KNOBS) == [], text
    assert "The Evaluator reads" in changelog and "The Advisor picked candidate" in changelog
    assert "**Guidance rewritten (v1):**" in changelog


def test_an_endpoint_that_cannot_score_writes_its_picks_as_letters(tmp_path: Path) -> None:
    llm = ScriptedLLM(can_score=False)
    _, study = _run(tmp_path, llm, trials=4)
    assert len(study.trials) == 4
    written = [body for agent, body in llm.requests if body.get("response_format")]
    titles = {body["response_format"]["schema"]["title"] for body in written}
    assert titles <= {"_Ping", "MenuLetters"} and "MenuLetters" in titles
    assert all(t.user_attrs.get("source") != "fallback" for t in study.trials)
