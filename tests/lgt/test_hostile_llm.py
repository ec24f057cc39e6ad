"""A hostile or broken endpoint cannot leak the key, crash a run or bloat its files.

Real `lgt tune` processes against a scripted local HTTP server: one echoes
the request's Authorization header into every text it writes, one writes
ten megabytes into every text, one sends a 400-digit number as a knob value.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from hostile_llm import echo_key, huge_number, huge_text
from llm_server import serve

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-live-HOSTILE-test-key-0123456789"


def _tune(tmp_path: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL",)}
    env |= {"OPENAI_API_KEY": KEY, "LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lgt", "tune", "--target", "iris", "--trials", "4",
                           "--optimize-every", "2", "--llm-base-url", base_url, "--llm-model", "x",
                           "--run-id", "hostile", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def _files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "results").rglob("*") if p.is_file()]


def test_an_endpoint_that_echoes_the_key_cannot_put_it_anywhere(tmp_path: Path) -> None:
    llm = echo_key()
    with serve(llm) as base_url:
        proc = _tune(tmp_path, base_url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"val loss flattened; auth header: Bearer {KEY}" in llm.planted  # the endpoint did echo the key
    assert KEY not in proc.stdout and KEY not in proc.stderr
    assert "auth header: Bearer [REDACTED]" in (tmp_path / "results" / "hostile" / "changelog.md").read_text()
    files = _files(tmp_path)
    assert {"studies.db", "checkpoint.db", "changelog.md", "transcript.jsonl", "report.md"} <= {p.name for p in files}
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path  # databases and PNGs too, byte for byte


def test_ten_megabytes_of_reason_are_cut_where_they_enter(tmp_path: Path) -> None:
    with serve(huge_text()) as base_url:
        proc = _tune(tmp_path, base_url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = tmp_path / "results" / "hostile"
    assert (run / "changelog.md").stat().st_size < 50_000
    assert (run / "transcript.jsonl").stat().st_size < 2_000_000  # raw replies kept to their first few thousand
    assert (run / "checkpoint.db").stat().st_size < 5_000_000
    assert "characters in all)" in (run / "transcript.jsonl").read_text()  # the raw reply's length, where it was cut
    assert "replaced (failed the checks)" in (run / "changelog.md").read_text()  # a cut run of x is not words
    study = optuna.load_study(study_name="hostile", storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}")
    assert all(len(str(t.user_attrs)) < 20_000 for t in study.trials)
    assert len(proc.stderr) < 50_000


def test_a_400_digit_number_is_a_validation_note_not_a_crash(tmp_path: Path) -> None:
    with serve(huge_number()) as base_url:
        proc = _tune(tmp_path, base_url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    study = optuna.load_study(study_name="hostile", storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}")
    assert len(study.trials) == 4
    notes = " ".join(n for t in study.trials for n in t.user_attrs.get("notes", []))
    assert "too large" in notes
