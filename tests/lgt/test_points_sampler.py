"""The grid's `PointsSampler`: each point once before any twice, also with several workers on one study."""

from __future__ import annotations

from pathlib import Path

import optuna

from lgt.methods import PointsSampler

POINTS = [{"x": 1}, {"x": 2}, {"x": 3}]


def _suggest(trial: optuna.Trial) -> int:
    return int(trial.suggest_categorical("x", [1, 2, 3]))


def test_two_workers_asking_at_once_get_different_points(tmp_path: Path) -> None:
    """Both trials exist before either has suggested: the place of each, not what others hold, picks its point."""
    storage = f"sqlite:///{tmp_path / 'grid.db'}"
    first = optuna.create_study(study_name="g", storage=storage, sampler=PointsSampler(POINTS, seed=0))
    second = optuna.load_study(study_name="g", storage=storage, sampler=PointsSampler(POINTS, seed=0))
    a, b = first.ask(), second.ask()
    assert {_suggest(a), _suggest(b)} == {1, 2}


def test_a_queued_trial_takes_no_point_and_the_points_wrap_around() -> None:
    study = optuna.create_study(sampler=PointsSampler(POINTS, seed=0))
    study.enqueue_trial({"x": 3})
    seen = []
    for _ in range(5):
        trial = study.ask()
        seen.append(_suggest(trial))
        study.tell(trial, 0.0)
    assert seen == [3, 1, 2, 3, 1]
