"""Each classic baseline fills an SQLite study with exactly the budgeted trials."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import pytest

from lgt.baselines import BaselineRequest, run_baseline
from lgt.observer import RunObserver
from tuning_targets import TrialResult, config_key, make_target


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


@pytest.mark.parametrize("method", ["tpe", "gp", "grid", "random"])
def test_baseline_writes_exact_budget_with_default_first(tmp_path: Path, method: str) -> None:
    summary = run_baseline(BaselineRequest(target="iris", method=method, trials=3, seed=1,
                                           storage=_storage(tmp_path)))
    study = optuna.load_study(study_name=summary["study_name"], storage=_storage(tmp_path))
    trials = study.get_trials()
    assert len(trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    first = min(trials, key=lambda t: t.number)
    assert first.user_attrs["source"] == "default"
    assert first.user_attrs["config"] == make_target("iris").default_config
    assert [t.user_attrs["source"] for t in trials].count("default") == 1
    for t in trials:
        assert t.user_attrs["method"] == method
        history = t.user_attrs["history"]
        assert history and set(history[0]) == {"epoch", "train_loss", "val_loss", "val_metric", "lr", "seconds"}
        assert t.value == pytest.approx(max(e["val_metric"] for e in history))
    assert len({config_key(t.user_attrs["config"]) for t in trials}) == 3

    folder = Path(summary["run_dir"])
    rows = list(csv.DictReader((folder / "trials.csv").read_text().splitlines()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2]
    assert "test_metric" not in rows[0]
    saved = json.loads((folder / "summary.json").read_text())
    best = max(trials, key=lambda t: t.value)
    assert saved["best_val_metric"] == pytest.approx(best.value)
    assert saved["test_metric"] == pytest.approx(best.user_attrs["test_metric"])
    assert saved["trials_run"] == 3 and saved["budget"] == 3


def test_default_method_runs_the_default_config_once(tmp_path: Path) -> None:
    summary = run_baseline(BaselineRequest(target="iris", method="default", trials=10, storage=_storage(tmp_path)))
    study = optuna.load_study(study_name=summary["study_name"], storage=_storage(tmp_path))
    assert len(study.trials) == 1
    assert study.trials[0].user_attrs["config"] == make_target("iris").default_config


def test_grid_spans_several_knobs_and_stays_in_the_grid(tmp_path: Path) -> None:
    target = make_target("iris", models="mlp")  # one family, one grid (the family grid: test_model_families.py)
    grid = target.space.grid(target.default_config, 5)
    summary = run_baseline(BaselineRequest(target="iris", method="grid", trials=5, storage=_storage(tmp_path),
                                           models="mlp"))
    study = optuna.load_study(study_name=summary["study_name"], storage=_storage(tmp_path))
    for t in study.trials[1:]:
        for knob, levels in grid.items():
            assert t.params[knob] in levels


class _StopAfter(RunObserver):
    """Simulates a crash (Ctrl-C) after some trials have finished."""

    def __init__(self, trials: int) -> None:
        self.left = trials

    def on_trial_end(self, number: int, result: TrialResult) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_resume_finishes_budget_without_repeating(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(BaselineRequest(target="iris", method="tpe", trials=4, storage=storage), _StopAfter(2))
    (name,) = optuna.get_all_study_names(storage)
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 2
    summary = run_baseline(BaselineRequest(target="iris", method="tpe", trials=4, storage=storage, resume=name))
    study = optuna.load_study(study_name=name, storage=storage)
    assert summary["trials_run"] == 4
    assert len(study.trials) == 4
    assert [t.user_attrs["source"] for t in study.trials].count("default") == 1
    # a bare resume of a finished run adds nothing
    run_baseline(BaselineRequest(target="iris", method="tpe", trials=4, storage=storage, resume=""))
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 4


def test_resume_reruns_a_trial_left_running_by_a_crash(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(BaselineRequest(target="iris", method="random", trials=3, storage=storage), _StopAfter(1))
    (name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=name, storage=storage)
    study.ask()  # a trial the crash left RUNNING
    run_baseline(BaselineRequest(target="iris", method="random", trials=3, storage=storage, resume=name))
    study = optuna.load_study(study_name=name, storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert study.trials[1].user_attrs["interrupted"] is True


def test_diverging_start_config_fails_with_reason_and_run_goes_on(tmp_path: Path) -> None:
    summary = run_baseline(BaselineRequest(target="iris", method="random", trials=3, storage=_storage(tmp_path),
                                           config={"learning_rate": 0.3, "optimizer": "sgd", "momentum": 0.99,
                                                   "epochs": 60, "batch_size": 16, "hidden_units": 512,
                                                   "hidden_layers": 4, "scaler": "none"}))
    study = optuna.load_study(study_name=summary["study_name"], storage=_storage(tmp_path))
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.FAIL
    assert "diverged" in first.user_attrs["fail_reason"]
    assert summary["trials_run"] == 3 and summary["trials_failed"] == 1
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2


def test_a_pruned_trial_stops_after_the_epoch_its_pruner_rejects() -> None:
    from lgt.studies import epochs_trained, is_counted
    from lgt.worker import train_trial
    from tuning_targets import Reporter

    target = make_target("digits")
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask(target.space.distributions())
    config = {**target.default_config, "epochs": 3}
    result, pruned = train_trial(target, config, 0, Reporter(), float("inf"), trial)
    assert pruned and len(result.history) == 1 and result.ok
    trial.set_user_attr("history", [e.to_dict() for e in result.history])
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    (frozen,) = study.trials
    assert is_counted(frozen) and epochs_trained(frozen) == 1


def test_an_epoch_budget_cuts_the_last_trial_short(tmp_path: Path) -> None:
    summary = run_baseline(BaselineRequest(target="digits", method="random", trials=10, seed=1,
                                           storage=_storage(tmp_path), epoch_budget=5,
                                           config={**make_target("digits").default_config, "epochs": 3}))
    study = optuna.load_study(study_name=summary["study_name"], storage=_storage(tmp_path))
    assert sum(len(t.user_attrs["history"]) for t in study.trials) == 5
    assert len(study.trials[0].user_attrs["history"]) == 3
