"""Issue 14.6: a CSV target is shown by its file's stem; its full path stays in the run's metadata.

A bench and a baseline on a CSV kept in a folder whose name must not leak
(it stands for a home directory or a client's name). Every file people read
(report.md, report.html, table.md, summary.csv, trials.csv, change logs) and
every file's name (plots above all) must be free of it; the metadata that a
resume needs (summary.json, bench.json, the study's attrs) keeps it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[2]
SECRET_FOLDER = "client-acme-private"
METADATA = {".json", ".jsonl", ".db"}  # where the full path may (and must) stay


def _lgt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env |= {"LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lgt", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def _houses(tmp_path: Path) -> Path:
    folder = tmp_path / SECRET_FOLDER
    folder.mkdir()
    path = folder / "houses.csv"
    rows = ["rooms,area,garden,price"] + [f"{1 + i % 5},{40 + 3 * i},{'yes' if i % 2 else 'no'},{100 + 7 * i + (i % 5) * 20}"
                                          for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_target_is_shown_by_its_stem_in_everything_people_read(tmp_path: Path) -> None:
    csv = _houses(tmp_path)
    target = f"csv:{csv}"
    bench = _lgt(tmp_path, "bench", "--targets", target, "--target-column", "price", "--methods", "default,random",
                 "--trials", "2", "--seeds", "1", "--bench-id", "labels")
    assert bench.returncode == 0, bench.stderr[-2000:]
    base = _lgt(tmp_path, "baseline", "--target", target, "--target-column", "price", "--method", "random",
                "--trials", "1", "--run-id", "houses-run")
    assert base.returncode == 0, base.stderr[-2000:]

    results = tmp_path / "results"
    files = [p for p in results.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"report.md", "table.md", "summary.csv", "summary.json", "bench.json"} <= names, names
    assert any(p.suffix == ".png" for p in files), names
    for path in files:
        relative = str(path.relative_to(results))
        assert SECRET_FOLDER not in relative and str(tmp_path) not in relative, relative
        if path.suffix in METADATA:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert SECRET_FOLDER not in text, f"{relative} shows the CSV's folder"
    assert "houses" in (results / "bench" / "labels" / "table.md").read_text()
    assert "houses" in (results / "houses-run" / "report.md").read_text()
    plots = [p.name for p in files if p.suffix == ".png"]
    assert any("houses" in name for name in plots), plots

    # The run's metadata keeps the full path: a resume and a worker read the data from it.
    storage = f"sqlite:///{results / 'studies.db'}"
    assert optuna.load_study(study_name="houses-run", storage=storage).user_attrs["target"] == target
    bench_names = json.loads((results / "bench" / "labels" / "bench.json").read_text())["study_names"]
    assert all(SECRET_FOLDER not in name and "/" not in name for name in bench_names), bench_names
    assert all(optuna.load_study(study_name=n, storage=storage).user_attrs["target"] == target for n in bench_names)
