"""Issue 23.5: a long CSV name still gives valid run ids, and every name is checked before anything is created.

A CSV whose stem has 224 characters made a generated run id of 251 (the
limit is 200): `lgt baseline` trained, then refused the name it had made
itself. Real processes on a real (small) CSV with that name.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM

from lgt.runs import MAX_RUN_ID, bench_study_name, new_run_id

STEM = "quarterly_sales_export_" + "x" * 201  # 224 characters


@pytest.fixture
def long_csv(tmp_path: Path) -> Path:
    path = tmp_path / f"{STEM}.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["f1", "f2", "y"])
        for i in range(60):
            writer.writerow([i % 7, (i * 3) % 11, "hi" if (i % 7) > 3 else "lo"])
    return path


def _studies(storage: str) -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))


def test_generated_ids_fit_and_stay_apart() -> None:
    long_a, long_b = f"csv:{STEM}a.csv", f"csv:{STEM}b.csv"
    for target in (long_a, f"csv:{'é' * 300}.csv"):
        assert len(new_run_id(target, "tpe-hyperband", 4294967295)) <= MAX_RUN_ID
        assert len(bench_study_name("b" * 100, target, "tpe-hyperband", 4294967295)) <= MAX_RUN_ID
    assert new_run_id(long_a, "tpe", 0).split("-tpe-")[0] != new_run_id(long_b, "tpe", 0).split("-tpe-")[0]
    assert new_run_id("csv:houses.csv", "tpe", 0).startswith("houses-tpe-s0-")  # short names as before


def test_baseline_on_a_long_csv_name_runs_and_resumes(tmp_path: Path, long_csv: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    args = ["baseline", "--target", f"csv:{long_csv}", "--target-column", "y", "--method", "random", "--trials", "2"]
    proc = run_lgt(*args, results=results)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (name,) = _studies(storage)
    assert len(name) <= MAX_RUN_ID and (results / name / "report.md").is_file()
    proc = run_lgt(*args, "--resume", results=results)  # bare --resume finds it by the same shortened stem
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _studies(storage) == [name]


def test_tune_and_bench_on_a_long_csv_name(tmp_path: Path, long_csv: Path) -> None:
    results = tmp_path / "results"
    storage = f"sqlite:///{results / 'studies.db'}"
    with serve(ScriptedLLM()) as base_url:
        env = {"OPENAI_API_KEY": "sk-test-long", "OPENAI_BASE_URL": base_url}
        tune = run_lgt("tune", "--target", f"csv:{long_csv}", "--target-column", "y", "--trials", "2",
                       "--optimize-every", "0", results=results, env=env)
        assert tune.returncode == 0, tune.stderr[-2000:]
        bench = run_lgt("bench", "--targets", f"csv:{long_csv}", "--target-column", "y", "--methods",
                        "lgt,random", "--trials", "2", "--seeds", "1", "--optimize-every", "0", results=results,
                        env=env)
        assert bench.returncode == 0, bench.stderr[-2000:]
    assert "failed" not in bench.stdout
    names = _studies(storage)
    assert len(names) == 3 and all(len(n) <= MAX_RUN_ID for n in names)
    for name in names:
        assert optuna.load_study(study_name=name, storage=storage).user_attrs.get("status") != "failed"


@pytest.mark.parametrize("argv", [
    ["bench", "--targets", "iris", "--methods", "random", "--trials", "1", "--seeds", "1", "--bench-id", "b" * 150],
    ["tune", "--target", "iris", "--run-id", "r" * 201, "--llm-base-url", "http://127.0.0.1:9/v1"],
    ["baseline", "--target", "iris", "--method", "random", "--run-id", "r" * 201],
])
def test_names_too_long_are_refused_before_anything_is_created(tmp_path: Path, argv: list[str]) -> None:
    line = one_line_exit_2(run_lgt(*argv, results=tmp_path / "results"))
    assert "characters" in line, line
    assert os.listdir(tmp_path) == []
