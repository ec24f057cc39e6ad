"""The one rule of which value is better (`lgt.direction`), and the places that read it agree with it."""

from __future__ import annotations

import math

import optuna
import pytest

from agents.records import TrialRecord, best_position, best_trial
from lgt.direction import best_first, best_index, best_of, direction_of, gain, is_better, sign
from lgt.reporting.store import read_run
from lgt.studies import best_trial as study_best_trial
from lgt.studies import study_direction

NAN = math.nan


@pytest.mark.parametrize(("value", "than", "direction", "expected"), [
    (0.9, 0.8, "maximize", True),
    (0.8, 0.9, "maximize", False),
    (0.8, 0.9, "minimize", True),
    (0.9, 0.8, "minimize", False),
    (0.5, 0.5, "maximize", False),  # a tie is no gain
    (0.5, 0.5, "minimize", False),
    (0.1, None, "maximize", True),  # anything beats nothing
    (0.1, None, "minimize", True),
    (0.1, NAN, "maximize", True),  # ... and NaN
    (0.1, NAN, "minimize", True),
    (None, 0.1, "maximize", False),  # nothing and NaN never win
    (NAN, 0.1, "minimize", False),
    (NAN, None, "maximize", False),
    (None, NAN, "minimize", False),
    (-math.inf, 0.0, "minimize", True),  # infinities are numbers
    (math.inf, 0.0, "minimize", False),
])
def test_is_better_in_both_directions_with_ties_none_and_nan(value: float | None, than: float | None,
                                                              direction: str, expected: bool) -> None:
    assert is_better(value, than, direction) is expected


def test_an_unknown_direction_is_refused() -> None:
    with pytest.raises(ValueError, match="maximize"):
        is_better(1.0, 0.0, "max")
    with pytest.raises(ValueError):
        sign("up")


def test_sign_gain_and_direction_of() -> None:
    assert sign("maximize") == 1.0 and sign("minimize") == -1.0
    assert gain(0.9, 0.8, "maximize") == pytest.approx(0.1) and gain(0.9, 0.8, "minimize") == pytest.approx(-0.1)
    assert direction_of(True) == "maximize" and direction_of(False) == "minimize"


def test_best_index_keeps_the_earliest_of_ties_and_skips_none_and_nan() -> None:
    values = [None, 0.7, NAN, 0.9, 0.9, 0.2]
    assert best_index(values, "maximize") == 3
    assert best_index(values, "minimize") == 5
    assert best_index([0.4, 0.4], "minimize") == 0
    assert best_index([None, NAN], "maximize") is None
    assert best_index([], "minimize") is None


def test_best_of_and_best_first() -> None:
    items = [("a", 0.5), ("b", None), ("c", 0.9), ("d", NAN), ("e", 0.5)]
    assert best_of(items, "maximize", lambda i: i[1]) == ("c", 0.9)
    assert best_of(items, "minimize", lambda i: i[1]) == ("a", 0.5)
    assert best_of([("x", None)], "minimize", lambda i: i[1]) is None
    assert [n for n, _ in best_first(items, "maximize", lambda i: i[1])] == ["c", "a", "e", "b", "d"]
    assert [n for n, _ in best_first(items, "minimize", lambda i: i[1])] == ["a", "e", "c", "b", "d"]


def _record(value: float | None, status: str = "complete") -> TrialRecord:
    return {"status": status, "val_metric": value}


def test_trial_records_follow_the_rule() -> None:
    """A failed trial, a NaN or an infinite value is never the best trial; the earliest of a tie is."""
    trials = [_record(NAN), _record(0.8, "failed"), _record(0.5), _record(math.inf), _record(0.6), _record(0.6)]
    assert best_position(trials, "maximize") == 4
    assert best_position(trials, "minimize") == 2
    assert best_trial(trials, {"name": "accuracy", "direction": "maximize"}) is trials[4]
    assert best_position([_record(NAN)], "maximize") is None


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_study_and_its_report_agree_on_the_best(direction: str) -> None:
    study = optuna.create_study(direction=direction)
    for value in (0.5, 0.9, 0.2, 0.9, 0.2):
        study.add_trial(optuna.trial.create_trial(value=value, params={}, distributions={}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={}, distributions={}))
    expected = 1 if direction == "maximize" else 2  # the earliest of the tied best
    assert study_direction(study) == direction
    best = study_best_trial(study)
    assert best is not None and best.number == expected
    run = read_run(study)
    assert run.direction == direction and run.best is not None and run.best.number == expected
    assert run.best_so_far()[-1] == (0.9 if direction == "maximize" else 0.2)


def test_values_equal_to_float32_precision_tie_and_the_earlier_stays_best() -> None:
    # the same accuracy from torch (float32) and from scikit-learn (float64)
    torch_acc, sklearn_acc = 0.9736841917037964, 0.9736842105263158
    assert not is_better(sklearn_acc, torch_acc, "maximize") and not is_better(torch_acc, sklearn_acc, "maximize")
    assert best_index([torch_acc, sklearn_acc], "maximize") == 0
    assert best_first([sklearn_acc, torch_acc, 0.99], "maximize", lambda v: v) == [0.99, sklearn_acc, torch_acc]
    assert is_better(0.97369, torch_acc, "maximize")  # a real difference, in the 5th digit, still wins
    assert not is_better(40000.01, 40000.0, "minimize") and is_better(39999.9, 40000.0, "minimize")  # relative
    assert is_better(math.inf, 1e308, "maximize") and is_better(0.0, -math.inf, "maximize")
