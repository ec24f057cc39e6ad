"""`lgt` as a user runs it: a real process, offline, with its results in a test's folder, and its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_lgt(*args: str, results: Path, cwd: Path = REPO,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m lgt ARGS` with no key or endpoint of the caller's, offline, writing under `results`."""
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    base |= {"LGT_RESULTS_DIR": str(results), "LGT_OFFLINE": "1"} | dict(env or {})
    return subprocess.run([sys.executable, "-m", "lgt", *args], cwd=cwd, env=base, capture_output=True, text=True,
                          timeout=600, check=False)


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    """The single `lgt: error: ...` line of a refused command (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lgt: error: "), lines
    return lines[0]
