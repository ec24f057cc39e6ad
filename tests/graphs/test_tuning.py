"""The whole LGT loop on a small real target, with only the LLM scripted.

These runs use the free-proposal Advisor (`lgt-llm`), whose replies the
script controls one by one; tests/graphs/test_proposers.py covers the
hybrid proposer and the gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import optuna
import pytest
from recording import CrashAfter
from scripted_llm import RATIONALE, SECRET, ScriptedLLM, proposal

from lgt.tune import TuneRequest, run_tune
from tuning_targets import config_key, make_target


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _tune(tmp_path: Path, llm: ScriptedLLM, trials: int = 4, **kw: object) -> dict[str, object]:
    request = TuneRequest(target="iris", trials=trials, storage=_storage(tmp_path), method="lgt-llm",
                          llm_base_url="http://llm.test/v1", **kw)  # type: ignore[arg-type]
    observer = kw.pop("observer", None) if "observer" in kw else None
    return run_tune(request, observer, client_factory=llm.factory())


def _study(tmp_path: Path, summary: dict[str, object]) -> optuna.Study:
    return optuna.load_study(study_name=str(summary["study_name"]), storage=_storage(tmp_path))


def _transcript(summary: dict[str, object]) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(str(summary["transcript"])).read_text().splitlines()]


def test_loop_runs_exact_budget_tracks_best_and_writes_its_notebook(tmp_path: Path) -> None:
    llm = ScriptedLLM()
    summary = _tune(tmp_path, llm, trials=4, optimize_every=2)
    study = _study(tmp_path, summary)
    trials = study.trials
    assert len(trials) == 4
    assert trials[0].user_attrs["source"] == "default"
    assert trials[0].user_attrs["config"] == make_target("iris").default_config
    assert all(t.user_attrs["method"] == "lgt-llm" for t in trials)
    assert all(t.user_attrs["source"] == "advisor" for t in trials[1:])
    assert trials[1].user_attrs["reasons"] == {"learning_rate": RATIONALE}
    assert "verdict" in trials[1].user_attrs and "analysis" in trials[1].user_attrs["verdict"]
    assert len({config_key(t.user_attrs["config"]) for t in trials}) == 4
    best = max(trials, key=lambda t: t.value)
    assert summary["best_trial"] == best.number and summary["best_val_metric"] == best.value

    changelog = Path(str(summary["changelog"])).read_text()
    assert changelog.count("## Round") == 4
    assert RATIONALE in changelog and "Textual gradient" in changelog and "## Outcome" in changelog
    assert f"trial #{best.number}" in changelog.split("## Outcome")[1]
    assert "Guidance rewritten (v1)" in changelog

    records = _transcript(summary)
    agents = [r["agent"] for r in records]
    assert agents.count("advisor") == 3 and agents.count("evaluator") == 4 and agents.count("optimizer") == 1
    assert all(r["prompt_tokens"] == 100 and r["latency_s"] >= 0 for r in records)
    assert any(RATIONALE in str(r["raw"]) for r in records if r["agent"] == "advisor")


def test_guidance_versions_are_kept_and_reach_the_next_advisor_prompt(tmp_path: Path) -> None:
    llm = ScriptedLLM()
    summary = _tune(tmp_path, llm, trials=5, optimize_every=2)
    advisor_prompts = llm.prompts("advisor")
    # rounds 1-2 trained, optimizer ran, then the advisor proposed round 3 with the guidance
    assert "GUIDANCE-V" not in advisor_prompts[0]
    assert all("GUIDANCE-V" in p for p in advisor_prompts[1:])
    changelog = Path(str(summary["changelog"])).read_text()
    assert "Guidance rewritten (v1)" in changelog and "Guidance rewritten (v2)" in changelog


def test_bad_llm_output_is_repaired_refused_or_falls_back(tmp_path: Path) -> None:
    llm = ScriptedLLM(advisor=[
        "{not json",                                           # round 2: parse error ...
        proposal(learning_rate=0.05, colour="red"),            # ... retry succeeds; unknown knob dropped
        proposal(learning_rate=7.0),                           # round 3: out of range -> clipped to 0.3
        proposal(learning_rate=0.05),                          # round 4: repeats round 2 ...
        proposal(learning_rate=0.05),                          # ... asked again, repeats again -> perturbed
        "nope", "still nope",                                  # round 5: two bad replies -> TPE fallback
        500,                                                   # round 6: server error -> TPE fallback
        httpx.ReadTimeout("scripted timeout"),                 # round 7: timeout -> TPE fallback
    ])
    summary = _tune(tmp_path, llm, trials=7, optimize_every=0)
    trials = _study(tmp_path, summary).trials
    assert len(trials) == 7
    assert trials[1].params["learning_rate"] == pytest.approx(0.05)
    assert "unknown knob 'colour' dropped" in trials[1].user_attrs["notes"]
    assert trials[2].params["learning_rate"] == pytest.approx(0.3)
    assert any("clipped" in n for n in trials[2].user_attrs["notes"])
    assert trials[3].user_attrs["source"] == "advisor+perturbed"
    assert config_key(trials[3].user_attrs["config"]) not in {config_key(t.user_attrs["config"]) for t in trials[:3]}
    assert [t.user_attrs["source"] for t in trials[4:]] == ["fallback"] * 3
    assert len({config_key(t.user_attrs["config"]) for t in trials}) == 7

    advisor_prompts = llm.prompts("advisor")
    assert "could not be used" in advisor_prompts[1]              # the retry carried the parse error
    assert "colour" in advisor_prompts[2]                          # the Advisor was told about the dropped knob
    assert "already run" in advisor_prompts[4]

    records = [r for r in _transcript(summary) if r["agent"] == "advisor"]
    errors = [str(r["error"]) for r in records if r["error"]]
    assert any("500" in e or "InternalServerError" in e for e in errors)
    assert any("Timeout" in e for e in errors)
    assert sum(1 for r in records if r["fallback"]) == 3
    changelog = Path(str(summary["changelog"])).read_text()
    assert "TPE suggested this round" in changelog


def test_api_key_never_written(tmp_path: Path) -> None:
    llm = ScriptedLLM(advisor=[401])
    with pytest.raises(Exception) as exc:
        _tune(tmp_path, llm, trials=2)
    assert SECRET not in str(exc.value)
    for path in (tmp_path / "results").rglob("*"):
        if path.is_file() and path.suffix in (".md", ".jsonl", ".json", ".csv"):
            assert SECRET not in path.read_text(), path


def test_resume_after_a_crash_reaches_exact_budget_without_duplicates(tmp_path: Path) -> None:
    llm = ScriptedLLM()
    request = TuneRequest(target="iris", trials=5, storage=_storage(tmp_path), llm_base_url="http://llm.test/v1",
                          optimize_every=2, method="lgt-llm")
    with pytest.raises(KeyboardInterrupt):
        run_tune(request, CrashAfter(3), client_factory=llm.factory())
    (run_id,) = optuna.get_all_study_names(_storage(tmp_path))
    assert len(optuna.load_study(study_name=run_id, storage=_storage(tmp_path)).trials) == 3
    resumed = TuneRequest(target="", trials=0, storage=_storage(tmp_path), llm_base_url="http://llm.test/v1",
                          optimize_every=2, resume=run_id)
    summary = run_tune(resumed, client_factory=llm.factory())
    trials = optuna.load_study(study_name=run_id, storage=_storage(tmp_path)).trials
    assert len(trials) == 5 and summary["trials_run"] == 5
    assert sorted(t.user_attrs["round"] for t in trials) == [1, 2, 3, 4, 5]
    assert len({config_key(t.user_attrs["config"]) for t in trials}) == 5
    assert Path(str(summary["changelog"])).read_text().count("## Round") == 5
    # resuming a finished run does nothing more
    run_tune(resumed, client_factory=llm.factory())
    assert len(optuna.load_study(study_name=run_id, storage=_storage(tmp_path)).trials) == 5


def test_approve_edit_and_reject(tmp_path: Path) -> None:
    answers = iter([
        {"action": "edit", "values": {"epochs": 12}},                # round 1: the default, edited
        {"action": "reject", "note": "NO-BIG-STEPS please"},          # round 2: rejected
        {"action": "accept"},                                         # round 2 again
        {"action": "accept"},                                         # round 3
    ])
    seen: list[dict[str, object]] = []

    def approver(payload: dict[str, object]) -> dict[str, object]:
        seen.append(payload)
        return next(answers)

    llm = ScriptedLLM()
    request = TuneRequest(target="iris", trials=3, storage=_storage(tmp_path), llm_base_url="http://llm.test/v1",
                          approve=True, optimize_every=0, method="lgt-llm")
    summary = run_tune(request, approver=approver, client_factory=llm.factory())
    trials = _study(tmp_path, summary).trials
    assert len(trials) == 3 and len(seen) == 4
    assert trials[0].params["epochs"] == 12 and trials[0].user_attrs["reasons"] == {"epochs": "edited by a person"}
    assert "NO-BIG-STEPS" in llm.prompts("advisor")[1]
    assert seen[1]["changes"] and seen[1]["reasons"]
