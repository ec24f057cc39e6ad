"""`--models` and `--metric` (issue 21) on `lgt baseline`, `lgt tune` and `lgt bench`, as a user types them.

A real `lgt baseline` process trains the chosen family on the chosen metric;
bad values and values that do not fit the target are one line, exit 2,
nothing created; a bench id holds them only when given; and a study stored
before model families existed resumes on the MLP-only space it ran on.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt
from optuna.trial import TrialState
from recording import CrashAfter

from lgt.baselines import BaselineRequest, run_baseline
from lgt.bench import BenchRequest, bench_id_for
from lgt.runs import RunSpec
from tuning_targets import MODEL_FAMILIES, make_target


def test_lgt_targets_shows_the_families_their_knobs_and_the_metrics(tmp_path: Path) -> None:
    proc = run_lgt("targets", results=tmp_path / "results")
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    wine = text.split("\nwine - ")[1].split("\nbreast_cancer - ")[0]
    assert "--metric accuracy | log_loss" in wine and "model families (--models): mlp, hist_gb, random_forest, linear" \
        in wine
    rows = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")[1:]] for line in wine.splitlines()
            if "│" in line and line.split("│")[0].strip()}
    assert rows["model"][2] == '"mlp"'
    assert rows["gb_learning_rate"][1].endswith("only when model is hist_gb") and rows["gb_learning_rate"][2] == "0.1"
    assert rows["n_estimators"][2] == "100" and rows["C"][2] == "1.0"  # each family's own default, though inactive
    assert "--metric mae | rmse | r2" in text.split("\ndiabetes - ")[1]
    assert "model families" not in text.split("\ndigits - ")[1].split("\nmnist - ")[0]


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_a_baseline_process_tunes_the_chosen_family_on_the_chosen_metric(tmp_path: Path) -> None:
    proc = run_lgt("baseline", "--target", "breast_cancer", "--models", "hist_gb", "--metric", "log_loss",
                   "--method", "tpe", "--trials", "3", "--seed", "1", "--run-id", "bc", "--storage",
                   _storage(tmp_path), results=tmp_path / "results")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "val log_loss" in proc.stdout and "test log_loss" in proc.stdout
    study = optuna.load_study(study_name="bc", storage=_storage(tmp_path))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert (study.user_attrs["models"], study.user_attrs["metric"]) == ("hist_gb", "log_loss")
    space = make_target("breast_cancer", models="hist_gb").space
    assert "model" not in space.knobs and "gb_learning_rate" in space.knobs
    trials = study.trials
    assert len(trials) == 3 and all(t.state == TrialState.COMPLETE for t in trials)
    for trial in trials:
        assert set(trial.params) == set(space.knobs)  # hist_gb's knobs and the feature knobs, no MLP knob
        history = trial.user_attrs["history"]
        assert trial.value == min(r["val_metric"] for r in history)  # the best stage by log loss (lower is better)
        assert trial.value is not None and 0 < trial.value < 1  # a log loss, not an accuracy
        assert 0.8 < trial.user_attrs["extra_metrics"]["val_accuracy"] <= 1  # accuracy kept beside it
    summary = json.loads((tmp_path / "results" / "bc" / "summary.json").read_text())
    assert (summary["metric"], summary["direction"]) == ("log_loss", "minimize")
    assert summary["best_trial"] == min(trials, key=lambda t: t.value or 0).number


@pytest.mark.parametrize("command, args, expected", [
    ("baseline", ["--target", "breast_cancer", "--models", "xgboost"], "unknown model family 'xgboost'"),
    ("baseline", ["--target", "breast_cancer", "--models", "mlp,mlp"], "each model family once"),
    ("baseline", ["--target", "digits", "--models", "mlp"], "--models applies to tabular targets"),
    ("baseline", ["--target", "synthetic:0", "--models", "all"], "--models applies to tabular targets"),
    ("baseline", ["--target", "breast_cancer", "--metric", "f1"], "unknown metric 'f1'"),
    ("baseline", ["--target", "breast_cancer", "--metric", "r2"], "--metric r2 is for regression"),
    ("baseline", ["--target", "diabetes", "--metric", "accuracy"], "--metric accuracy is for classification"),
    ("baseline", ["--target", "digits", "--metric", "mae"], "digits is classification"),
    ("bench", ["--targets", "digits,wine", "--metric", "rmse"], "--metric rmse is for regression"),
    ("bench", ["--targets", "digits", "--models", "hist_gb"], "--models applies to tabular targets"),
    ("bench", ["--targets", "wine", "--models", "forest"], "unknown model family 'forest'"),
    ("bench", ["--targets", "wine", "--methods", "lgt,tpe", "--models", "mlpx"], "unknown model family 'mlpx'"),
    ("tune", ["--target", "wine", "--metric", "mae"], "--metric mae is for regression"),
    ("tune", ["--target", "wine", "--models", "nope"], "unknown model family 'nope'"),
])
def test_bad_or_misplaced_values_are_one_line_and_create_nothing(tmp_path: Path, command: str, args: list[str],
                                                                  expected: str) -> None:
    if command == "baseline":
        args = [*args, "--method", "tpe", "--trials", "1"]
    elif command == "bench":
        args = [*args, "--trials", "1", "--seeds", "1"] + ([] if "--methods" in args else ["--methods", "tpe"])
    line = one_line_exit_2(run_lgt(command, *args, "--storage", _storage(tmp_path), results=tmp_path / "results"))
    assert expected in line, line
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "results").exists()


def test_a_metric_that_does_not_fit_a_csv_is_refused_once_its_task_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("x,y\n" + "".join(f"{i},{'a' if i % 2 else 'b'}\n" for i in range(40)))
    line = one_line_exit_2(run_lgt("baseline", "--target", f"csv:{path}", "--target-column", "y", "--metric",
                                   "mae", "--method", "tpe", "--trials", "1", "--storage", _storage(tmp_path),
                                   results=tmp_path / "results"))
    assert "metric 'mae' is for regression" in line, line
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "results").exists()


def test_models_and_metric_join_the_bench_id_only_when_given() -> None:
    base = {"targets": ["wine", "diabetes"], "methods": ["tpe", "random"], "trials": 5, "seeds": [1]}
    plain = bench_id_for(BenchRequest(**base))  # type: ignore[arg-type]
    assert plain == bench_id_for(BenchRequest(**base, models=None, metric=None))  # type: ignore[arg-type]
    ids = {bench_id_for(BenchRequest(**(base | extra)))  # type: ignore[arg-type]
           for extra in ({}, {"models": "mlp"}, {"models": "hist_gb"}, {"metric": "log_loss"},
                         {"models": "mlp", "metric": "log_loss"})}
    assert len(ids) == 5 and plain in ids
    # The same families in another order, or typed with spaces, are the same bench.
    assert bench_id_for(BenchRequest(**base, models="linear,mlp")) == bench_id_for(  # type: ignore[arg-type]
        BenchRequest(**base, models="mlp, linear"))  # type: ignore[arg-type]


def test_a_run_stores_its_families_resolved_and_other_targets_none() -> None:
    assert RunSpec("a", "iris", "tpe", 0, 2).models == ",".join(MODEL_FAMILIES)
    assert RunSpec("a", "iris", "tpe", 0, 2, models="linear,mlp").models == "mlp,linear"
    assert RunSpec("a", "csv:x.csv", "tpe", 0, 2, models="all").models == ",".join(MODEL_FAMILIES)
    assert RunSpec("a", "digits", "tpe", 0, 2).models is None


def _forget_models(db: Path) -> None:
    """What a study stored before model families holds: no `models` attr (as written by that version)."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("DELETE FROM study_user_attributes WHERE key = 'models'").rowcount >= 1


def test_a_study_stored_before_model_families_resumes_on_the_mlp_alone(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(BaselineRequest(target="iris", method="tpe", trials=5, seed=3, storage=storage, run_id="old",
                                     out_dir=tmp_path / "old", models="mlp"), CrashAfter(2))
    _forget_models(tmp_path / "studies.db")
    study = optuna.load_study(study_name="old", storage=storage)
    assert "models" not in study.user_attrs and RunSpec.from_study(study).models == "mlp"
    proc = run_lgt("baseline", "--resume", "old", "--storage", storage, results=tmp_path / "results")
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = optuna.load_study(study_name="old", storage=storage).trials
    mlp_space = make_target("iris", models="mlp").space
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 5
    for trial in trials:  # every trial, the resumed ones included, is an MLP of the space of before
        assert "model" not in trial.params and set(trial.params) <= set(mlp_space.knobs), trial.number
        assert trial.distributions == mlp_space.distributions(trial.params)
