"""The README's "Use from Python" snippet runs as printed, offline: copied from README.md, not from a copy here.

The scripted server stands in for the LLM (what `OPENAI_BASE_URL` points
at); the snippet's own storage and report land in a fresh folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
from llm_server import serve
from scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    section = (REPO / "README.md").read_text().split("## Use from Python", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "README's Use from Python section has no python block"
    return found.group(1)


def test_the_readme_snippet_tunes_its_objective_and_prints_its_report(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(readme_snippet())
    with serve(ScriptedLLM()) as url:
        env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
        env |= {"OPENAI_BASE_URL": url, "LGT_OFFLINE": "1", "PYTHONPATH": str(REPO),
                "LGT_RESULTS_DIR": str(tmp_path / "results")}
        done = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = Path(done.stdout.strip().splitlines()[-1])
    assert report.name == "report.md" and report.exists()
    log = (report.parent / "changelog.md").read_text()
    assert "## Round 10:" in log and "**Verdict:**" in log and "max_features" in log
    study = optuna.load_study(study_name="my-forest", storage=f"sqlite:///{tmp_path / 'my.db'}")
    assert len(study.trials) == 10 and all(t.value is not None for t in study.trials)
