"""`lgt tune --adapt epoch`: the whole loop with in-run adaptation, an epoch budget and a resume.

digits (3 epochs by default), epoch budget 7, only the LLM scripted:
trial 1 trains epoch 1, the Evaluator calls the curve unhealthy, the Advisor
lowers the learning rate, the A/B check trains epoch 2 twice (3 epochs
trained), epoch 3 runs unchanged (4). Trial 2 gets the 3 epochs left: two
healthy epochs, then one with no room for a check. 7 epochs in all.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from PIL import Image
from scripted_llm import SECRET, ScriptedLLM

from lgt.observer import RunObserver
from lgt.reporting import rebuild
from lgt.studies import counted_trials
from lgt.tune import TuneRequest, run_tune
from tuning_targets import TrialResult

UNHEALTHY = json.dumps({"healthy": False, "analysis": "Training loss barely falls; the rate looks too high.",
                        "gradient": [{"knob": "learning_rate", "direction": "decrease", "reason": "loss flat",
                                      "confidence": 0.7}]})
LOWER = json.dumps({"changes": [{"knob": "learning_rate", "value": 0.003, "reason": "the loss is flat at 0.01"}],
                    "expected_effect": "the loss falls again"})
STRUCTURAL = json.dumps({"changes": [{"knob": "conv_channels", "value": 32, "reason": "more capacity"}],
                         "expected_effect": "higher accuracy"})


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def request(tmp_path: Path, **kw: object) -> TuneRequest:
    options: dict[str, object] = {"epoch_budget": 7, **kw}
    return TuneRequest(target="digits", trials=5, storage=f"sqlite:///{tmp_path / 'studies.db'}",
                       llm_base_url="http://llm.test/v1", optimize_every=0, adapt="epoch",
                       **options)  # type: ignore[arg-type]


def study_of(tmp_path: Path, run_id: str) -> optuna.Study:
    return optuna.load_study(study_name=run_id, storage=f"sqlite:///{tmp_path / 'studies.db'}")


def test_adapt_epoch_writes_the_schedule_and_spends_exactly_the_epoch_budget(tmp_path: Path) -> None:
    llm = ScriptedLLM(evaluator=[UNHEALTHY], advisor=[LOWER])
    summary = run_tune(request(tmp_path), client_factory=llm.factory())
    trials = counted_trials(study_of(tmp_path, str(summary["study_name"])))
    assert [t.user_attrs["epochs_trained"] for t in trials] == [4, 3]
    first = trials[0].user_attrs
    changed = [e for e in first["schedule"] if e["changes"]]
    assert len(changed) == 1 and changed[0]["changes"] == {"learning_rate": 0.003}
    assert changed[0]["source"] == "advisor" and isinstance(changed[0]["kept"], bool)
    assert changed[0]["val_metric_with"] is not None and changed[0]["val_metric_without"] is not None
    assert len(first["schedule"]) == len(first["history"]) == 3
    run_dir = Path(str(summary["run_dir"]))
    changelog = (run_dir / "changelog.md").read_text()
    assert "Inside the run" in changelog and "A/B check" in changelog and "learning_rate" in changelog
    plot = run_dir / f"schedule-trial{trials[0].number}.png"
    assert f"({plot.name})" in changelog
    with Image.open(plot) as image:
        assert image.size[0] > 300 and image.size[1] > 200
    # The schedule lives in the storage: a rebuild writes the same change log and draws the plot again.
    plot.unlink()
    (run_dir / "changelog.md").unlink()
    rebuild(run_dir, f"sqlite:///{tmp_path / 'studies.db'}")
    assert (run_dir / "changelog.md").read_text() == changelog and plot.exists()


def test_a_structural_change_mid_run_is_refused_with_its_reason(tmp_path: Path) -> None:
    llm = ScriptedLLM(evaluator=[UNHEALTHY], advisor=[STRUCTURAL])
    summary = run_tune(request(tmp_path, epoch_budget=3), client_factory=llm.factory())
    (trial,) = counted_trials(study_of(tmp_path, str(summary["study_name"])))
    entry = trial.user_attrs["schedule"][1]
    assert entry["changes"] == {} and entry["refused"][0]["knob"] == "conv_channels"
    assert "structural" in entry["refused"][0]["reason"]
    assert trial.user_attrs["config"]["conv_channels"] == 16


class _CrashInTrial(RunObserver):
    """Stands in for a kill in the middle of the second trial."""

    def __init__(self) -> None:
        self.ended = 0

    def on_trial_end(self, number: int, result: TrialResult) -> None:
        self.ended += 1
        if self.ended == 2:
            raise KeyboardInterrupt


def test_resume_restarts_the_interrupted_trial_and_counts_its_epochs_once(tmp_path: Path) -> None:
    llm = ScriptedLLM(evaluator=[UNHEALTHY], advisor=[LOWER])
    with pytest.raises(KeyboardInterrupt):
        run_tune(request(tmp_path, run_id="adapt-crash"), _CrashInTrial(), client_factory=llm.factory())
    assert len(counted_trials(study_of(tmp_path, "adapt-crash"))) == 1
    summary = run_tune(TuneRequest(target="", trials=0, storage=f"sqlite:///{tmp_path / 'studies.db'}",
                                   llm_base_url="http://llm.test/v1", resume="adapt-crash"),
                       client_factory=llm.factory())
    trials = counted_trials(study_of(tmp_path, "adapt-crash"))
    assert [t.user_attrs["round"] for t in trials] == [1, 2]
    assert sum(t.user_attrs["epochs_trained"] for t in trials) == 7
    assert summary["trials_run"] == 2
