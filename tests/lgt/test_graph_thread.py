"""A study deleted and made again under its name starts its LGT loop afresh (its checkpoints and transcript live apart)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from scripted_llm import SECRET, ScriptedLLM

from lgt.studies import counted_trials
from lgt.tune import TuneRequest, run_tune


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_a_run_deleted_and_started_again_under_its_id_trains_its_whole_budget(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    request = TuneRequest(target="iris", trials=3, seed=1, storage=storage, method="lgt-tpe", models="linear",
                          llm_base_url="http://llm.test/v1", optimize_every=0, run_id="again",
                          out_dir=tmp_path / "again")
    run_tune(request, client_factory=ScriptedLLM().factory())
    first = optuna.load_study(study_name="again", storage=storage).user_attrs["graph_thread"]
    optuna.delete_study(study_name="again", storage=storage)  # the run folder and its checkpoint.db stay

    folder = tmp_path / "again"
    calls = (folder / "transcript.jsonl").read_text().count("\n")
    assert calls > 0
    summary = run_tune(request, client_factory=ScriptedLLM().factory())
    study = optuna.load_study(study_name="again", storage=storage)
    assert len(counted_trials(study)) == 3 and summary["trials_run"] == 3
    assert study.user_attrs["graph_thread"] != first
    # The old run's LLM calls are kept apart, not counted as the new run's.
    (kept,) = folder.glob("transcript.before-*.jsonl")
    assert kept.read_text().count("\n") == calls
    assert (folder / "transcript.jsonl").read_text().count("\n") == calls
