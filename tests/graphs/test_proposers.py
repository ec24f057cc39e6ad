"""The proposers: TPE's candidates, the Advisor's choice, the gate, and the checks on its words.

Real trainings on iris with only the LLM scripted; the `tpe` baseline is
run for real beside them, so "candidate 0 is what the tpe baseline would
try next" is checked against the baseline itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from recording import CrashAfter
from scripted_llm import SECRET, ScriptedLLM, choice

from lgt.baselines import BaselineRequest, run_baseline
from lgt.tune import TuneRequest, run_tune
from tuning_targets import config_key


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _configs(tmp_path: Path, name: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=_storage(tmp_path))
    return [config_key(t.user_attrs["config"]) for t in sorted(study.trials, key=lambda t: t.number)]


def _tune(tmp_path: Path, llm: ScriptedLLM, **kw: object) -> dict[str, object]:
    fields: dict[str, object] = {"target": "iris", "trials": 6, "seed": 3, "storage": _storage(tmp_path),
                                 "llm_base_url": "http://llm.test/v1", "optimize_every": 0}
    return run_tune(TuneRequest(**(fields | kw)), client_factory=llm.factory())  # type: ignore[arg-type]


def _baseline(tmp_path: Path, trials: int = 6, seed: int = 3) -> list[str]:
    summary = run_baseline(BaselineRequest(target="iris", method="tpe", trials=trials, seed=seed,
                                           storage=_storage(tmp_path)))
    return _configs(tmp_path, str(summary["study_name"]))


def test_the_tpe_proposer_trains_exactly_the_tpe_baselines_configs_even_across_a_resume(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path)
    llm = ScriptedLLM()
    summary = _tune(tmp_path, llm, method="lgt-tpe")
    assert _configs(tmp_path, str(summary["study_name"])) == baseline
    assert not [a for a, _ in llm.requests if a in ("advisor", "chooser")]  # no LLM choice at all

    # A run killed after three trials and resumed in a new graph replays TPE's history and goes on the same way.
    request = TuneRequest(target="iris", trials=6, seed=3, storage=_storage(tmp_path), method="lgt-tpe",
                          llm_base_url="http://llm.test/v1", optimize_every=0, run_id="crashed")
    with pytest.raises(KeyboardInterrupt):
        run_tune(request, CrashAfter(3), client_factory=llm.factory())
    run_tune(TuneRequest(target="", trials=0, storage=_storage(tmp_path), llm_base_url="http://llm.test/v1",
                         resume="crashed"), client_factory=llm.factory())
    assert _configs(tmp_path, "crashed") == baseline


def test_candidate_0_is_the_baselines_next_config_and_departures_are_gated(tmp_path: Path) -> None:
    baseline = _baseline(tmp_path, trials=8)
    llm = ScriptedLLM(chooser=[choice(0)])  # then the default: always the last candidate, a departure when possible
    summary = _tune(tmp_path, llm, trials=8)
    study = optuna.load_study(study_name=str(summary["study_name"]), storage=_storage(tmp_path))
    trials = sorted(study.trials, key=lambda t: t.number)
    assert config_key(trials[1].user_attrs["config"]) == baseline[1]  # round 2: the Advisor took candidate 0
    assert trials[1].user_attrs["source"] == "tpe" and trials[1].user_attrs["pick"] == 0
    departed = [t for t in trials if t.user_attrs.get("departed")]
    gated = [t for t in trials if t.user_attrs.get("gated")]
    assert departed and gated  # the Advisor departed until the gate stopped it
    assert len(departed) <= 3  # two free departures, then at most 40% of the rounds
    for trial in gated:
        assert trial.user_attrs["source"] == "tpe" and not trial.user_attrs["departed"]
        assert any(note.startswith("gate: ") for note in trial.user_attrs["notes"])
    for trial in departed:
        option = trial.user_attrs["evidence"]["option"]
        assert option["origin"] in ("region", "gradient") and 1 <= option["rank"] <= option["of"]
    changelog = Path(str(summary["changelog"])).read_text()
    assert "Chosen by the Advisor: candidate" in changelog and "gate: the Advisor" in changelog
    assert "| knob | from | to | reason | evidence (computed) |" in changelog
    # Every prompt offered candidate 0 first, as TPE's next pick.
    prompts = [json.dumps(body["messages"]) for agent, body in llm.requests if agent == "chooser"]
    assert prompts and all("0: " in p and "TPE's next pick" in p for p in prompts)


def test_words_that_contradict_or_are_not_words_are_replaced_and_bad_guidance_refused(tmp_path: Path) -> None:
    contradicting = json.dumps({"pick": 0, "adjust": [{"knob": "learning_rate", "value": 0.1,
                                                        "reason": "decrease learning rate to steady the curve"}],
                                "reason": ".*/48", "expected_effect": "1.97; max-loss: 0.256; best eval: 0.2;"})
    sloppy = json.dumps({"analysis": "Batch norm should be set to a constant value which will not change.",
                         "gradient": [{"knob": "optimizer", "direction": "decrease", "reason": "too fast",
                                       "confidence": 0.5},
                                      {"knob": "dropout", "direction": "increase",
                                       "reason": "lower dropout helps here", "confidence": 0.4}]})
    llm = ScriptedLLM(chooser=[contradicting], evaluator=[sloppy, sloppy],
                      optimizer=[json.dumps({"guidance": "][", "reason_for_change": "none"})])
    summary = _tune(tmp_path, llm, trials=2, optimize_every=1, models="mlp")  # the MLP: learning_rate is a knob
    study = optuna.load_study(study_name=str(summary["study_name"]), storage=_storage(tmp_path))
    assert study.user_attrs["models"] == "mlp"  # --models reaches an LGT run's spec, so a resume rebuilds the MLP
    second = sorted(study.trials, key=lambda t: t.number)[1].user_attrs
    assert second["config"]["learning_rate"] == pytest.approx(0.1)  # the adjustment itself is valid and trains
    assert second["reasons"]["learning_rate"].startswith("(by lgt, from the evidence)")
    assert second["rationale"] == "" and second["expected_effect"].startswith("(by lgt, from the evidence)")
    replaced = " | ".join(second["replaced"])
    assert "says decrease learning_rate, but learning_rate went 0.01 -> 0.1" in replaced
    assert "mostly symbols or numbers" in replaced
    first = min(study.trials, key=lambda t: t.number).user_attrs["verdict"]
    assert [s["knob"] for s in first["gradient"]] == ["dropout"]  # "decrease optimizer" dropped
    assert first["gradient"][0]["reason"].startswith("(by lgt, from the evidence)")  # "lower dropout" vs increase
    assert any("optimizer is categorical" in r for r in first["replaced"])
    assert not any(k.startswith("guidance_v") for k in study.user_attrs)
    assert study.user_attrs["guidance_refused_1"]["guidance"] == "]["
    changelog = Path(str(summary["changelog"])).read_text()
    assert "Guidance refused" in changelog and "v0 stays" in changelog
    assert "decrease learning rate" not in changelog and ".*/48" not in changelog and "][" not in changelog


def test_an_epoch_budget_stops_an_lgt_run_where_it_stops_the_baseline(tmp_path: Path) -> None:
    """The last trial of either loop trains only the epochs left, so one budget trains equal epochs everywhere."""
    def epochs(name: str) -> list[int]:
        study = optuna.load_study(study_name=name, storage=_storage(tmp_path))
        return [len(t.user_attrs["history"]) for t in sorted(study.trials, key=lambda t: t.number)]

    baseline = run_baseline(BaselineRequest(target="iris", method="tpe", trials=6, seed=3, storage=_storage(tmp_path),
                                            epoch_budget=40, models="mlp"))
    lgt = _tune(tmp_path, ScriptedLLM(), method="lgt-tpe", epoch_budget=40, models="mlp")
    assert epochs(str(lgt["study_name"])) == epochs(str(baseline["study_name"]))
    assert sum(epochs(str(lgt["study_name"]))) == 40
