"""A tiny bench: LGT (scripted LLM) and TPE on iris, two seeds, three trials."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image
import optuna
import pytest
from scripted_llm import SECRET, ScriptedLLM

from lgt.bench import BenchRequest, run_bench
from lgt.cli import main
from lgt.reporting import rebuild


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def _request(storage: str, **kw: object) -> BenchRequest:
    fields: dict[str, object] = {"targets": ["iris"], "methods": ["lgt", "tpe"], "trials": 3, "seeds": [1, 2],
                                 "storage": storage, "llm_base_url": "http://llm.test/v1", "optimize_every": 2}
    return BenchRequest(**(fields | kw))  # type: ignore[arg-type]


def test_tiny_bench_writes_every_output_and_reruns_nothing(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    llm = ScriptedLLM()
    result = run_bench(_request(storage), client_factory=llm.factory())
    folder = Path(result["bench_dir"])
    for name in ("summary.csv", "table.md", "report.md", "bench.json", "convergence_iris.png", "curves_iris.png",
                 "llm_share.png"):
        assert (folder / name).exists(), name
    for png in folder.glob("*.png"):
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300 and png.stat().st_size > 10_000

    rows = list(csv.DictReader((folder / "summary.csv").read_text().splitlines()))
    assert sorted((r["method"], r["seed"]) for r in rows) == [("lgt", "1"), ("lgt", "2"), ("tpe", "1"), ("tpe", "2")]
    for column in ("best_val_metric", "test_metric", "trials_to_95", "trials_to_99", "wall_seconds",
                   "training_seconds", "llm_seconds", "other_seconds", "prompt_tokens", "completion_tokens"):
        assert column in rows[0]
    names = json.loads((folder / "bench.json").read_text())["study_names"]
    assert len(names) == 4
    for row in rows:
        (name,) = [n for n in names if n.endswith(f".{row['method']}.s{row['seed']}")]
        study = optuna.load_study(study_name=name, storage=storage)
        assert len(study.trials) == 3
        best = max(study.trials, key=lambda t: t.value)
        assert float(row["best_val_metric"]) == pytest.approx(best.value)
        assert float(row["test_metric"]) == pytest.approx(best.user_attrs["test_metric"])
        assert study.user_attrs["bench_id"] == result["bench_id"]
        if row["method"] == "lgt":
            assert float(row["llm_seconds"]) > 0 and int(float(row["prompt_tokens"])) > 0
        else:
            assert row["llm_seconds"] == ""  # no LLM in a baseline: left empty, not 0
    table = (folder / "table.md").read_text()
    assert "**" in table and "±" in table and "LGT" in table and "TPE" in table, table
    report = (folder / "report.md").read_text()
    assert "convergence_iris.png" in report and "table" in report.lower()

    before = {n: len(optuna.load_study(study_name=n, storage=storage).trials) for n in names}
    calls = len(llm.requests)
    run_bench(_request(storage), client_factory=llm.factory())
    assert {n: len(optuna.load_study(study_name=n, storage=storage).trials) for n in names} == before
    assert len(llm.requests) == calls

    summary_before, table_before = (folder / "summary.csv").read_text(), table
    (folder / "summary.csv").unlink()
    (folder / "table.md").unlink()
    rebuild(folder, storage)
    assert (folder / "summary.csv").read_text() == summary_before
    assert (folder / "table.md").read_text() == table_before


def test_a_target_that_cannot_run_is_reported_failed_and_the_rest_runs(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    result = run_bench(_request(storage, targets=["mnist", "iris"], methods=["random"], seeds=[1],
                                data_dir=str(tmp_path / "no-data")))
    folder = Path(result["bench_dir"])
    rows = {r["target"]: r for r in csv.DictReader((folder / "summary.csv").read_text().splitlines())}
    assert rows["mnist"]["status"] == "failed" and "MNIST not found" in rows["mnist"]["fail_reason"]
    assert rows["iris"]["status"] != "failed" and float(rows["iris"]["best_val_metric"]) > 0.5
    assert "failed" in (folder / "table.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--methods", "tpe,bayes"], "unknown method 'bayes'"),
    (["--targets", "iris,nope"], "unknown target 'nope'"),
    (["--seeds", ""], "--seeds is empty"),
    (["--trials", "0"], "--trials must be at least 1"),
    (["--storage", "postgresql+nodriver://x@127.0.0.1:1/db"], "does not open"),
])
def test_bench_bad_input_is_one_line_exit_2(args: list[str], message: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--targets", "iris", "--methods", "tpe", "--trials", "2", "--seeds", "1",
            "--storage", f"sqlite:///{tmp_path / 's.db'}"]
    for flag, value in zip(args[::2], args[1::2]):
        argv[argv.index(flag) + 1] = value
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_adapt_epoch_bench_with_pruning_baselines_spends_equal_epochs(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    result = run_bench(_request(storage, targets=["digits"], methods=["lgt", "tpe-median", "tpe-hyperband"],
                                trials=20, seeds=[1], adapt="epoch", epoch_budget=8),
                       client_factory=ScriptedLLM().factory())
    folder = Path(result["bench_dir"])
    rows = {r["method"]: r for r in csv.DictReader((folder / "summary.csv").read_text().splitlines())}
    assert set(rows) == {"lgt", "tpe-median", "tpe-hyperband"}
    assert {int(r["epochs_trained"]) for r in rows.values()} == {8}
    for row in rows.values():
        study = optuna.load_study(study_name=row["study_name"], storage=storage)
        assert sum(len(t.user_attrs.get("history", [])) for t in study.trials
                   if "schedule" not in t.user_attrs) <= 8
    table = (folder / "table.md").read_text()
    assert "TPE + median pruning" in table and "TPE + Hyperband" in table
    cost = table.split("## Search cost")[1]
    assert cost.count("· 8 epochs") == 3
    lgt = optuna.load_study(study_name=rows["lgt"]["study_name"], storage=storage)
    assert all("schedule" in t.user_attrs for t in lgt.trials)
    # the same command again finds every run finished
    again = run_bench(_request(storage, targets=["digits"], methods=["lgt", "tpe-median", "tpe-hyperband"],
                               trials=20, seeds=[1], adapt="epoch", epoch_budget=8),
                      client_factory=ScriptedLLM().factory())
    assert again["bench_id"] == result["bench_id"]
    assert len(optuna.load_study(study_name=rows["tpe-median"]["study_name"], storage=storage).trials) == \
        int(rows["tpe-median"]["trials_run"])


def test_bench_and_report_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    result = run_bench(BenchRequest(targets=["synthetic:0.01"], methods=["tpe", "random"], trials=3, seeds=[1],
                                    storage=postgres_url))
    folder = Path(result["bench_dir"])
    rows = list(csv.DictReader((folder / "summary.csv").read_text().splitlines()))
    assert sorted(r["method"] for r in rows) == ["random", "tpe"] and all(r["trials_run"] == "3" for r in rows)
    before = (folder / "table.md").read_text()
    (folder / "table.md").unlink()
    rebuild(folder, postgres_url)
    assert (folder / "table.md").read_text() == before
