"""Issue 23.3: a bench id holds everything that changes what is measured; the README's ids stay as they were.

Real `lgt bench` processes on a small real CSV with two columns to predict:
each column is its own bench, and a given `--bench-id` run again with other
settings is refused in one line before anything runs.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt

from lgt.bench import BenchRequest, bench_id_for


@pytest.fixture
def two_columns(tmp_path: Path) -> Path:
    """80 rows: `a` follows x1, `b` follows x2, so the two columns give two different results."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=80), rng.normal(size=80)
    path = tmp_path / "two.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["x1", "x2", "a", "b"])
        for u, v in zip(x1, x2, strict=True):
            writer.writerow([f"{u:.4f}", f"{v:.4f}", "yes" if u > 0 else "no", "up" if v > 0.5 else "down"])
    return path


def _bench(tmp_path: Path, csv_path: Path, *args: str) -> list[str]:
    return ["bench", "--targets", f"csv:{csv_path}", "--methods", "random", "--trials", "1", "--seeds", "1",
            "--storage", f"sqlite:///{tmp_path / 'studies.db'}", *args]


def _summary(bench_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((bench_dir / "summary.csv").open()))


def test_each_target_column_is_a_bench_of_its_own(tmp_path: Path, two_columns: Path) -> None:
    results = tmp_path / "results"
    first = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "a"), results=results)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "b"), results=results)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "already finished; skipped" not in second.stderr
    folders = sorted((results / "bench").iterdir())
    assert len(folders) == 2  # two ids
    by_column = {json.loads((f / "bench.json").read_text())["target_column"]: f for f in folders}
    assert set(by_column) == {"a", "b"}
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    for column, folder in by_column.items():
        (row,) = _summary(folder)
        study = optuna.load_study(study_name=row["study_name"], storage=storage)
        assert study.user_attrs["target_column"] == column

    again = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "b"), results=results)
    assert again.returncode == 0 and "already finished; skipped" in again.stderr  # the same command continues


@pytest.mark.parametrize("first, then, flag", [
    (["--target-column", "a"], ["--target-column", "b"], "--target-column"),
    (["--target-column", "a"], ["--target-column", "a", "--csv-sep", ";"], "--csv-sep"),
    (["--target-column", "a", "--trials", "1"], ["--target-column", "a", "--trials", "2"], "--trials"),
    (["--target-column", "a", "--models", "linear"], ["--target-column", "a", "--models", "hist_gb"], "--models"),
    (["--target-column", "a", "--models", "linear"], ["--target-column", "a"], "--models"),
    (["--target-column", "a", "--metric", "log_loss"], ["--target-column", "a"], "--metric"),
])
def test_a_given_bench_id_with_other_settings_is_refused(tmp_path: Path, two_columns: Path, first: list[str],
                                                         then: list[str], flag: str) -> None:
    results = tmp_path / "results"
    done = run_lgt(*_bench(tmp_path, two_columns, "--bench-id", "mine", *first), results=results)
    assert done.returncode == 0, done.stderr[-2000:]
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    name = "mine.two.random.s1"
    trials = len(optuna.load_study(study_name=name, storage=storage).trials)
    report = (results / "bench" / "mine" / "report.md").read_text()
    line = one_line_exit_2(run_lgt(*_bench(tmp_path, two_columns, "--bench-id", "mine", *then), results=results))
    assert f"bench mine was run with {flag}" in line and "another --bench-id" in line, line
    assert (results / "bench" / "mine" / "report.md").read_text() == report  # nothing written
    assert [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)] == [name]
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == trials


def test_ids_of_benches_that_set_nothing_new_stay_as_the_readme_cites_them() -> None:
    assert bench_id_for(BenchRequest(targets=["digits", "breast_cancer"],
                                     methods=["lgt", "lgt-llm", "tpe", "random", "default"], trials=12,
                                     seeds=[1, 2, 3])) == "bench-58bc08a0c5"
    assert bench_id_for(BenchRequest(targets=["digits"], methods=["lgt", "tpe"], trials=12,
                                     seeds=[4, 5])) == "bench-cf9646a5d0"
    assert bench_id_for(BenchRequest(targets=["digits"], methods=["lgt", "tpe", "tpe-median", "tpe-hyperband"],
                                     trials=30, seeds=[1], adapt="epoch", epoch_budget=24)) == "bench-70248ca7aa"
    assert bench_id_for(BenchRequest(targets=["digits", "breast_cancer"], methods=["lgt", "tpe"], trials=12,
                                     seeds=[1, 2, 3, 4, 5])) == "bench-6ab8c446db"
    assert bench_id_for(BenchRequest(targets=["mnist"], methods=["lgt", "tpe", "random", "tpe-hyperband", "default"],
                                     trials=15, seeds=[1, 2, 3], epoch_budget=10,
                                     data_dir="../shared/data")) == "bench-cf71e22e60"
    tables = ["breast_cancer", "diabetes", "wine", "csv:results/bench-data/benefits.csv",
              "csv:results/bench-data/diamonds.csv"]
    assert bench_id_for(BenchRequest(targets=tables, methods=["lgt", "tpe", "random", "default"], trials=15,
                                     seeds=[1, 2, 3], target_column="target", models="all")) == "bench-96aad08446"
    assert bench_id_for(BenchRequest(targets=tables, methods=["tpe", "default"], trials=15, seeds=[1, 2, 3],
                                     target_column="target", models="mlp")) == "bench-3de560c22c"


def test_every_measured_setting_changes_the_id() -> None:
    base = {"targets": ["csv:x.csv"], "methods": ["lgt", "tpe"], "trials": 5, "seeds": [1]}
    ids = {bench_id_for(BenchRequest(**(base | extra)))  # type: ignore[arg-type]
           for extra in ({}, {"target_column": "a"}, {"target_column": "b"}, {"csv_sep": ";"},
                         {"csv_encoding": "latin-1"}, {"llm_model": "m"}, {"adapt": "epoch", "epoch_budget": 9},
                         {"epoch_budget": 9}, {"optimize_every": 2})}
    assert len(ids) == 9


def test_a_bench_from_before_model_families_is_continued_only_as_it_was(tmp_path: Path, two_columns: Path) -> None:
    """Its cells ran the MLP alone; --models now defaults to all families, so it is not silently mixed with them."""
    results = tmp_path / "results"
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    done = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "a", "--models", "mlp", "--bench-id", "old"),
                   results=results)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(tmp_path / "studies.db") as conn:  # as a study of that time was stored: no `models`
        assert conn.execute("DELETE FROM study_user_attributes WHERE key = 'models'").rowcount == 1
    line = one_line_exit_2(run_lgt(*_bench(tmp_path, two_columns, "--target-column", "a", "--bench-id", "old"),
                                   results=results))
    assert "with the MLP alone" in line and "--bench-id old --models mlp" in line, line
    again = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "a", "--models", "mlp", "--bench-id", "old"),
                    results=results)
    assert again.returncode == 0 and "already finished; skipped" in again.stderr, again.stderr[-2000:]
    (row,) = _summary(results / "bench" / "old")
    assert "model" not in optuna.load_study(study_name=row["study_name"], storage=storage).trials[0].params


def test_models_and_metric_are_written_down_with_the_bench(tmp_path: Path, two_columns: Path) -> None:
    results = tmp_path / "results"
    proc = run_lgt(*_bench(tmp_path, two_columns, "--target-column", "a", "--models", "linear,hist_gb",
                           "--metric", "log_loss"), results=results)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = (results / "bench").iterdir()
    written = json.loads((folder / "bench.json").read_text())
    assert (written["models"], written["metric"]) == ("hist_gb,linear", "log_loss")
    assert folder.name == bench_id_for(BenchRequest(targets=[f"csv:{two_columns}"], methods=["random"], trials=1,
                                                    seeds=[1], target_column="a", models="hist_gb,linear",
                                                    metric="log_loss"))
    (row,) = _summary(folder)
    study = optuna.load_study(study_name=row["study_name"], storage=f"sqlite:///{tmp_path / 'studies.db'}")
    assert (study.user_attrs["models"], study.user_attrs["metric"]) == ("hist_gb,linear", "log_loss")
    assert study.trials[0].params["model"] == "hist_gb"  # the first family's defaults are the first trial
