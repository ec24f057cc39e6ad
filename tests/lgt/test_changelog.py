"""The change log is rendered from the storage alone: `lgt report` rebuilds the run's own, byte for byte."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from scripted_llm import SECRET, ScriptedLLM

from lgt.cli import main
from lgt.tune import TuneRequest, run_tune


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_lgt_report_rebuilds_the_change_log_the_run_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    llm = ScriptedLLM(chooser=["{not json", "nope"])  # round 2 falls back to TPE's pick: a note to carry over
    summary = run_tune(TuneRequest(target="iris", trials=5, storage=storage, llm_base_url="http://llm.test/v1",
                                   optimize_every=2), client_factory=llm.factory())
    folder = Path(str(summary["run_dir"]))
    written = (folder / "changelog.md").read_bytes()
    text = written.decode()
    assert text.count("## Round") == 5 and "## Outcome" in text
    assert "Guidance rewritten (v1)" in text and "Guidance rewritten (v2)" in text and "Final guidance (v2)" in text
    assert "TPE's candidate 0 trains" in text

    study = optuna.load_study(study_name=str(summary["study_name"]), storage=storage)
    assert study.user_attrs["guidance_v2"]["after_round"] == 4  # the guidance versions live in the storage

    (folder / "changelog.md").unlink()
    assert main(["report", str(folder), "--storage", storage]) == 0
    assert (folder / "changelog.md").read_bytes() == written
    assert "report:" in capsys.readouterr().out
