"""Reports are rebuilt from the Optuna storage alone.

Real baseline runs on iris (accuracy, maximize) and diabetes (MAE,
minimize) fill one storage; studies built by hand add an LGT-like run with
LLM timings, a method that failed before its first trial, and sets of
values where trials-to-95% is known in advance.
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

from lgt.baselines import BaselineRequest, run_baseline
from lgt.errors import UserError
from lgt.reporting import BENCH_COLUMNS, bench_rows, load_runs, rebuild, write_bench_report, write_run_files

MACHINE = "test machine: 2 CPU cores, no GPU"
LLM = "smollm2-test"
# On diabetes the two methods get different seeds, so their shared default trial differs and one wins.
REAL_RUNS = [("iris", "tpe", 0), ("iris", "tpe", 1), ("iris", "random", 0), ("iris", "random", 1),
             ("iris", "default", 0), ("iris", "default", 1), ("diabetes", "tpe", 0), ("diabetes", "random", 1)]


@dataclass
class Bench:
    storage: str
    results: Path
    names: list[str]
    run_dirs: dict[str, Path]
    lgt: str
    failed: str


def _history(value: float) -> list[dict[str, Any]]:
    """Three epochs whose last reaches `value`, the epoch whose weights are kept."""
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_metric": value * (0.7 + 0.1 * e),
             "lr": 0.01, "seconds": 0.1} for e in (1, 2, 3)]


def _add_study(storage: str, name: str, *, target: str, method: str, values: list[float | None], seed: int = 0,
               direction: Literal["maximize", "minimize"] = "maximize", metric: str = "accuracy", study_attrs: dict[str, Any] | None = None,
               trial_attrs: list[dict[str, Any]] | None = None) -> str:
    """A study as lgt writes it, with the given validation values (None: a failed trial)."""
    study = optuna.create_study(storage=storage, study_name=name, direction=direction)
    attrs = {"run_id": name, "target": target, "method": method, "seed": seed, "trials": len(values),
             "metric": metric} | (study_attrs or {})
    for key, value in attrs.items():
        study.set_user_attr(key, value)
    for i, value in enumerate(values):
        user_attrs = {"method": method, "source": "default" if i == 0 else method, "config": {"learning_rate": i},
                      "status": "failed" if value is None else "complete",
                      "fail_reason": "diverged" if value is None else None,
                      "history": [] if value is None else _history(value), "best_epoch": 3, "seconds": 1.0,
                      "test_metric": None if value is None else value - 0.01, "extra_metrics": {}}
        user_attrs |= (trial_attrs or [{}] * len(values))[i]
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL if value is None else TrialState.COMPLETE,
                                                  value=value, user_attrs=user_attrs))
    return name


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    """The real runs, 3 trials each, marked as bench b1 the way `lgt bench` marks them; plus two hand-built runs."""
    results = tmp_path_factory.mktemp("bench") / "results"
    results.mkdir()
    storage = f"sqlite:///{results / 'studies.db'}"
    names, run_dirs = [], {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LGT_OFFLINE", "1")
        mp.setenv("LGT_RESULTS_DIR", str(results))
        for target, method, seed in REAL_RUNS:
            summary = run_baseline(BaselineRequest(target=target, method=method, trials=3, seed=seed,
                                                   storage=storage))
            names.append(summary["study_name"])
            run_dirs[f"{target}-{method}-{seed}"] = Path(summary["run_dir"])
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        training = sum(t.user_attrs["seconds"] for t in study.trials)
        study.set_user_attr("bench_id", "b1")
        study.set_user_attr("wall_seconds", training + 0.5)
        study.set_user_attr("status", "complete")
    llm_attrs = [{"round": r, "llm_seconds": s, "llm_prompt_tokens": 500, "llm_completion_tokens": 80,
                  "proposal": {}, "reasons": "", "verdict": ""} for r, s in ((1, 2.0), (2, 3.0), (3, 1.0))]
    lgt = _add_study(storage, "iris-lgt-s0-hand", target="iris", method="lgt", values=[0.9, 0.95, 0.97],
                     study_attrs={"bench_id": "b1", "wall_seconds": 20.0, "status": "complete", "llm_model": LLM},
                     trial_attrs=llm_attrs)
    failed = _add_study(storage, "iris-gp-s0-failed", target="iris", method="gp", values=[],
                        study_attrs={"bench_id": "b1", "status": "failed", "wall_seconds": 0.1, "trials": 3,
                                     "fail_reason": "GP sampler needs scipy | not installed"})
    return Bench(storage, results, [lgt, failed, *names], run_dirs, lgt, failed)


@pytest.fixture(scope="module")
def written(bench: Bench) -> Path:
    folder = bench.results / "bench" / "b1"
    write_bench_report(bench.storage, bench.names, folder, title="lgt bench b1", machine=MACHINE)
    return folder


def _png_ok(path: Path) -> None:
    assert path.stat().st_size > 10_000, path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 250, path


def _result_table(folder: Path) -> tuple[list[str], dict[str, list[str]]]:
    """The first table of table.md: its header cells and each method's row cells."""
    text = (folder / "table.md").read_text().split("## Search cost")[0]
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    split = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return split[0], {row[0]: row[1:] for row in split[2:]}


def test_summary_csv_matches_the_storage(bench: Bench, written: Path) -> None:
    rows = list(csv.DictReader((written / "summary.csv").read_text().splitlines()))
    assert tuple(rows[0]) == BENCH_COLUMNS
    assert sorted(r["study_name"] for r in rows) == sorted(bench.names)
    for row in rows:
        study = optuna.load_study(study_name=row["study_name"], storage=bench.storage)
        if row["study_name"] == bench.failed:
            assert (row["status"], row["trials_run"], row["best_val_metric"], row["fail_reason"]) == \
                ("failed", "0", "", "GP sampler needs scipy | not installed")
            continue
        complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
        pick = max if row["direction"] == "maximize" else min
        best = pick(complete, key=lambda t: float(t.value or 0))
        assert float(row["best_val_metric"]) == pytest.approx(best.value)
        assert float(row["test_metric"]) == pytest.approx(best.user_attrs["test_metric"])
        assert int(row["trials_run"]) == int(row["budget"]) == len(study.trials) == \
            (1 if row["method"] == "default" else 3)
        training = sum(t.user_attrs["seconds"] for t in study.trials)
        assert float(row["training_seconds"]) == pytest.approx(training, abs=1e-3)
        assert float(row["wall_seconds"]) == pytest.approx(study.user_attrs["wall_seconds"], abs=1e-3)
        assert (row["bench_id"], row["status"], row["seed"]) == ("b1", "complete", str(study.user_attrs["seed"]))
        if row["trials_to_99"]:
            assert 1 <= int(row["trials_to_95"]) <= int(row["trials_to_99"]) <= int(row["trials_run"])
        if row["target"] == "diabetes":
            assert (row["metric"], row["direction"]) == ("mae", "minimize")
    baseline = next(r for r in rows if r["method"] == "tpe")
    assert float(baseline["other_seconds"]) == pytest.approx(0.5, abs=2e-3)  # wall was set to training + 0.5
    assert baseline["llm_seconds"] == baseline["prompt_tokens"] == baseline["llm_model"] == ""
    lgt = bench_rows(load_runs(bench.storage, [bench.lgt]))[0]
    assert (lgt["llm_seconds"], lgt["training_seconds"], lgt["other_seconds"]) == (6.0, 3.0, 11.0)
    assert (lgt["prompt_tokens"], lgt["completion_tokens"], lgt["llm_model"]) == (1500, 240, LLM)
    assert lgt["trials_to_95"] == 2  # alone, its own 0.97 is the target's best: 0.9 < 0.9215 <= 0.95


def test_trials_to_95_and_99_against_the_best_of_any_method(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'hand.db'}"
    names = [
        _add_study(storage, "a", target="iris", method="tpe", values=[0.5, None, 0.96, 0.99]),
        _add_study(storage, "b", target="iris", method="random", values=[0.8, 0.97]),
        _add_study(storage, "c", target="diabetes", method="tpe", values=[50.0, 45.0, 44.0], direction="minimize",
                   metric="mae"),
        _add_study(storage, "d", target="diabetes", method="random", values=[47.0, 43.0], direction="minimize",
                   metric="mae"),
    ]
    rows = {r["study_name"]: r for r in bench_rows(load_runs(storage, names))}
    # iris: best 0.99 -> 95% is 0.9405, 99% is 0.9801; the failed trial still counts as a trial.
    assert (rows["a"]["trials_to_95"], rows["a"]["trials_to_99"]) == (3, 4)
    assert (rows["b"]["trials_to_95"], rows["b"]["trials_to_99"]) == (2, None)
    # diabetes (lower is better): best 43 -> within 95% is <= 45.26, within 99% is <= 43.43.
    assert (rows["c"]["trials_to_95"], rows["c"]["trials_to_99"]) == (2, None)
    assert (rows["d"]["trials_to_95"], rows["d"]["trials_to_99"]) == (2, 2)
    assert rows["c"]["best_val_metric"] == 44.0 and rows["d"]["best_val_metric"] == 43.0
    assert rows["a"]["trials_run"] == 4 and rows["a"]["default_val_metric"] == 0.5


def test_table_bolds_the_best_mean_test_per_target_and_shows_failures(bench: Bench, written: Path) -> None:
    header, table = _result_table(written)
    assert header[1:] == ["iris (accuracy ↑)", "diabetes (MAE ↓)"]
    assert list(table) == ["LGT", "TPE", "GP", "Random", "Default (untuned)"]
    assert table["GP"][0] == "failed: GP sampler needs scipy \\| not installed"
    rows = bench_rows(load_runs(bench.storage, bench.names))
    for column, target in enumerate(("iris", "diabetes")):
        means = {}
        for label, method in (("LGT", "lgt"), ("TPE", "tpe"), ("Random", "random"), ("Default (untuned)", "default")):
            tests = [r["test_metric"] for r in rows if r["target"] == target and r["method"] == method]
            if tests:
                means[label] = statistics.fmean(tests)
        pick = max if target == "iris" else min
        winner = pick(means, key=lambda label: means[label])
        bold = [label for label, cells in table.items() if "**" in cells[column]]
        assert winner in bold and all(means[b] == means[winner] for b in bold)
    assert "±" in table["TPE"][0] and "(val " in table["TPE"][0]  # two seeds on iris
    assert "(val " in table["TPE"][1] and "±" not in table["TPE"][1]  # one seed on diabetes
    assert table["LGT"][1] == "" and table["GP"][1] == ""
    cost = (written / "table.md").read_text().split("## Search cost")[1]
    assert " trials · " in cost and " s · " in cost and " epochs |" in cost


def test_cost_table_splits_wall_time_and_lists_each_runs_epochs(bench: Bench, written: Path) -> None:
    text = (written / "table.md").read_text().split("## Search cost")[1].split("\n## ")[0]
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    table = {row[0]: row[1:] for row in ([c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:])}
    # The hand-built LGT run: wall 20 s, three trials of 1 s training, 2 + 3 + 1 s of LLM, 3 epochs each.
    assert table["LGT"][0].endswith(" · 20.0 s · training 15%, LLM 30%, other 55% · 9 epochs"), table["LGT"][0]
    rows = bench_rows(load_runs(bench.storage, bench.names))
    for column, target in enumerate(("iris", "diabetes")):
        mine = sorted((r for r in rows if r["target"] == target and r["method"] == "tpe"), key=lambda r: r["seed"])
        wall = sum(r["wall_seconds"] for r in mine)
        training = sum(r["training_seconds"] for r in mine)
        split = f"training {training / wall:.0%}, other {sum(r['other_seconds'] for r in mine) / wall:.0%}"
        epochs = ", ".join(str(r["epochs_trained"]) for r in mine)
        assert table["TPE"][column].endswith(f" · {split} · {epochs} epochs"), table["TPE"][column]
        assert "LLM" not in table["TPE"][column]  # a baseline asks no LLM
    assert len(epochs.split(", ")) == 1 and len(table["TPE"][0].split(" · ")[-1].split(", ")) == 2  # one per seed
    assert table["GP"][0] == "failed"


def test_figures_are_real_pngs_and_the_page_embeds_them(written: Path) -> None:
    pngs = ["convergence_iris.png", "convergence_diabetes.png", "curves_iris.png", "curves_diabetes.png",
            "llm_share.png"]
    page = (written / "report.md").read_text()
    for name in pngs:
        _png_ok(written / name)
        assert f"]({name})" in page
    assert page.startswith("# lgt bench b1\n")
    assert LLM in page and MACHINE in page and "seeds 0, 1" in page and "3 trials per run" in page
    assert "On iris, " in page and "On diabetes, " in page and "runner-up" in page and "untuned default (" in page
    assert "validation metric alone" in page
    assert (written / "table.md").read_text().strip() in page


def test_rebuild_from_a_bench_folder_reproduces_summary_and_table(bench: Bench, written: Path,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "bench" / "b1"
    folder.mkdir(parents=True)
    (folder / "bench.json").write_text(json.dumps({"bench_id": "b1", "study_names": bench.names,
                                                   "storage": "sqlite:///elsewhere.db", "machine": MACHINE}))
    assert rebuild(folder, bench.storage) == folder / "report.md"
    for name in ("summary.csv", "table.md"):
        assert (folder / name).read_bytes() == (written / name).read_bytes()
    assert (folder / "report.md").read_text() == (written / "report.md").read_text()


def test_run_report_from_a_run_folder_with_the_default_storage(bench: Bench, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "run"
    shutil.copytree(bench.run_dirs["iris-tpe-0"], folder)
    (folder / "changelog.md").write_text("# change log\n")
    monkeypatch.setenv("LGT_RESULTS_DIR", str(bench.results))  # so the default storage is the bench's
    page = rebuild(folder).read_text()
    for name in ("convergence.png", "curves.png"):
        _png_ok(folder / name)
        assert f"]({name})" in page
    assert "[changelog.md](changelog.md)" in page and "[trials.csv](trials.csv)" in page
    summary = json.loads((folder / "summary.json").read_text())
    assert f"| best validation accuracy | {summary['best_val_metric']:.3f} (trial {summary['best_trial']}) |" in page
    assert f"| its test accuracy | {summary['test_metric']:.3f} |" in page
    assert "| trials | 3 of 3 (0 failed) |" in page


def test_run_report_of_an_lgt_run_counts_llm_time_and_tokens(bench: Bench, tmp_path: Path) -> None:
    page = Path(write_run_files(bench.storage, bench.lgt, tmp_path)["report"]).read_text()
    assert f"LLM: {LLM}" in page
    assert "| wall time | 20.0 s (training 3.0 s, LLM 6.0 s, other 11.0 s) |" in page
    assert "| LLM tokens | 1,500 prompt, 240 completion |" in page
    assert "[changelog.md](changelog.md)" in page and (tmp_path / "changelog.md").read_text().count("## Round") == 3


def test_rebuild_refuses_what_it_cannot_read(bench: Bench, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="neither a run folder"):
        rebuild(tmp_path, bench.storage)
    with pytest.raises(UserError, match="is not a folder"):
        rebuild(tmp_path / "nowhere", bench.storage)
    (tmp_path / "bench.json").write_text(json.dumps({"bench_id": "x", "study_names": ["iris-tpe-s9-missing"]}))
    with pytest.raises(UserError, match="no study 'iris-tpe-s9-missing'"):
        rebuild(tmp_path, bench.storage)
    with pytest.raises(UserError, match="does not exist"):
        rebuild(tmp_path, f"sqlite:///{tmp_path / 'absent.db'}")
    assert not (tmp_path / "absent.db").exists()
    (tmp_path / "bench.json").write_text("{not json")
    with pytest.raises(UserError, match="does not read as JSON"):
        rebuild(tmp_path, bench.storage)


def test_targets_without_results_keep_their_column(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'edge.db'}"
    study = optuna.create_study(storage=storage, study_name="mnist-tpe-s0-failed")
    for key, value in {"target": "mnist", "method": "tpe", "seed": 0, "trials": 3, "status": "failed",
                       "fail_reason": "MNIST files not found under data/MNIST/raw"}.items():
        study.set_user_attr(key, value)
    names = [_add_study(storage, "iris-tpe-s0", target="iris", method="tpe", values=[0.9, 0.95]),
             _add_study(storage, "iris-random-s0", target="iris", method="random", values=[None, None]),
             "mnist-tpe-s0-failed"]
    page = write_bench_report(storage, names, tmp_path, title="Edge", machine=MACHINE).read_text()
    header, table = _result_table(tmp_path)
    assert header[1:] == ["iris (accuracy ↑)", "mnist"]
    assert table["TPE"] == ["**0.940** (val 0.950)", "failed: MNIST files not found under data/MNIST/raw"]
    assert table["Random"] == ["no trial completed", ""]
    assert "On mnist no method produced a result." in page
    _png_ok(tmp_path / "convergence_iris.png")
    assert not (tmp_path / "convergence_mnist.png").exists() and not (tmp_path / "llm_share.png").exists()


def test_an_lgt_run_that_mostly_fell_back_to_tpe_is_marked_in_the_table(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    sources = ["default", "fallback", "fallback", "fallback"]
    name = _add_study(storage, "wine-lgt-s0-down", target="wine", method="lgt", values=[0.8, 0.85, 0.9, 0.88],
                      study_attrs={"status": "complete"},
                      trial_attrs=[{"source": s, "round": i + 1} for i, s in enumerate(sources)])
    write_bench_report(storage, [name], tmp_path / "b", title="t", machine=MACHINE)
    _, cells = _result_table(tmp_path / "b")
    assert "MOSTLY TPE FALLBACK: 3 of 4 rounds fell back to TPE" in cells["LGT"][0]
    row = next(csv.DictReader((tmp_path / "b" / "summary.csv").read_text().splitlines()))
    assert row["fallback_rounds"] == "3" and row["rounds"] == "4"


def test_paired_differences_with_tpe_seed_by_seed(bench: Bench, written: Path) -> None:
    text = (written / "table.md").read_text()
    assert "## Paired with TPE, seed by seed" in text
    lines = [line for line in text.split("## Paired with TPE")[1].splitlines() if line.startswith("| ")]
    table = {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:])}
    rows = bench_rows(load_runs(bench.storage, bench.names))

    def test_of(method: str, seed: int, target: str = "iris") -> float:
        return next(float(r["test_metric"]) for r in rows
                    if (r["target"], r["method"], r["seed"]) == (target, method, seed))

    diffs = [test_of("random", s) - test_of("tpe", s) for s in (0, 1)]
    won, lost = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    assert table["Random"][0] == (f"{diffs[0]:+.3f}, {diffs[1]:+.3f} (mean {statistics.fmean(diffs):+.3f}; "
                                  f"{won} won, {2 - won - lost} tied, {lost} lost)")
    assert table["LGT"][0].startswith(f"{test_of('lgt', 0) - test_of('tpe', 0):+.3f} (mean ")  # one seed in common
    assert table["TPE"] == ["", ""]
    assert table["Random"][1] == "no seed in common"  # diabetes: TPE ran seed 0, random seed 1
