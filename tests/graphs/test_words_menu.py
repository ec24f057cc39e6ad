"""Menu mode's picks are checked against the code-computed flags before code writes them out.

A pick the numbers contradict ("overfitting" on a healthy curve, "diverged"
on finite losses, "improved" on a trial that is not the new best) is
replaced by code's own reading and noted; a step whose cause the numbers do
not show, or that moves a knob the wrong way for its cause, is dropped.
"""

from __future__ import annotations

from typing import Any

from agents.diagnostics import diagnose, flags
from agents.menus import remedy_menu
from agents.records import TrialRecord
from agents.wording import says_nothing
from graphs.evidence import Option
from graphs.proposals import Candidate
from graphs.words import BY_LGT, checked_candidate, checked_rules, checked_verdict
from tuning_targets import make_target

METRIC = {"name": "accuracy", "direction": "maximize"}
TARGET = make_target("digits")
KNOBS = {k["name"]: k for k in TARGET.space.describe()}
DEFAULT = dict(TARGET.default_config)


def record(number: int, val: float | None, curve: list[tuple[float, float, float]], **changes: Any) -> TrialRecord:
    """A trial with (val_metric, train_loss, val_loss) per epoch."""
    history = [{"epoch": i + 1, "val_metric": m, "train_loss": t, "val_loss": v, "seconds": 0.1}
               for i, (m, t, v) in enumerate(curve)]
    trial: TrialRecord = {"number": number, "config": DEFAULT | changes, "changes": dict(changes),
                          "status": "complete" if val is not None else "failed", "val_metric": val,
                          "history": history, "source": "advisor"}
    trial["diagnostics"] = dict(diagnose(trial, METRIC))
    return trial


HEALTHY = [(0.80, 1.0, 0.9), (0.85, 0.6, 0.6), (0.88, 0.45, 0.45), (0.88, 0.44, 0.46)]
OVERFIT = [(0.80, 1.2, 0.9), (0.88, 0.6, 0.5), (0.91, 0.3, 0.35), (0.90, 0.15, 0.42), (0.89, 0.08, 0.55)]


def verdict(outcome: str, diagnosis: str, *steps: tuple[str, str, str], new_best: bool = False) -> dict[str, Any]:
    return {"is_new_best": new_best, "analysis": "", "outcome": outcome, "diagnosis": diagnosis,
            "gradient": [{"knob": k, "direction": d, "reason": "", "confidence": None, "cause": c} for k, d, c in steps]}


def test_a_diagnosis_the_flags_contradict_is_replaced_and_said_so() -> None:
    best = record(0, 0.95, HEALTHY)
    newest = record(1, 0.90, HEALTHY, dropout=0.3)
    checked = checked_verdict(verdict("no gain", "overfitting"), newest, best, KNOBS, METRIC)
    assert checked["diagnosis"] == "healthy"
    assert any("overfitting: validation loss did not rise" in r for r in checked["replaced"])
    assert f"{BY_LGT} diagnosis: healthy" in checked["analysis"]
    assert "overfitting" not in checked["analysis"]
    diverged = checked_verdict(verdict("no gain", "diverged"), newest, best, KNOBS, METRIC)
    assert diverged["diagnosis"] == "healthy" and any("losses stayed finite" in r for r in diverged["replaced"])


def test_a_wrong_outcome_is_corrected_and_a_supported_diagnosis_stands_as_the_evaluators() -> None:
    best = record(0, 0.95, HEALTHY)
    newest = record(1, 0.91, OVERFIT, dropout=0.3)
    checked = checked_verdict(verdict("improved", "overfitting"), newest, best, KNOBS, METRIC)
    assert checked["outcome"] == "no gain" and checked["replaced"][0].startswith("outcome: the Evaluator picked")
    assert checked["analysis"].startswith("No gain (computed; the Evaluator read improved): val accuracy 0.91 did not "
                                          "beat the best so far, 0.95")
    assert "the Evaluator's diagnosis: overfitting (val loss rose from 0.35 at epoch 3 to 0.55 at epoch 5" \
           in checked["analysis"]
    assert says_nothing(checked["analysis"], list(KNOBS)) == []


def test_steps_whose_cause_the_numbers_do_not_show_or_that_move_the_wrong_way_are_dropped() -> None:
    best = record(0, 0.95, HEALTHY)
    newest = record(1, 0.91, OVERFIT, dropout=0.3)
    checked = checked_verdict(verdict("no gain", "overfitting",
                                      ("weight_decay", "increase", "overfitting"),  # the playbook's remedy
                                      ("dropout", "increase", "overfitting"),  # a remedy, though the trial raised it
                                      ("hidden_units", "increase", "overfitting"),  # the wrong way
                                      ("learning_rate", "decrease", "plateau"),  # not what the curve shows
                                      ("epochs", "increase", "no gain")),  # the trial did not move epochs
                              newest, best, KNOBS, METRIC)
    assert [(s["knob"], s["direction"]) for s in checked["gradient"]] == [("weight_decay", "increase"),
                                                                        ("dropout", "increase")]
    dropped = " ".join(checked["replaced"])
    assert "no remedy for overfitting" in dropped and "'plateau' is not what the numbers show" in dropped
    assert "did not move epochs" in dropped
    for step in checked["gradient"]:
        assert step["reason"].startswith("against its overfitting (val loss rose")
        assert says_nothing(step["reason"], list(KNOBS)) == []


def test_rules_stand_only_where_the_record_backs_them() -> None:
    trials = [record(0, 0.80, HEALTHY), record(1, 0.91, OVERFIT, dropout=0.3),
              record(2, 0.60, HEALTHY, learning_rate=0.3), record(3, 0.85, HEALTHY, batch_size=128)]
    texts, dropped = checked_rules([
        {"shape": "prefer", "knob": "weight_decay", "direction": "increase", "when": "overfitting"},
        {"shape": "prefer", "knob": "dropout", "direction": "decrease", "when": "overfitting"},
        {"shape": "prefer", "knob": "epochs", "direction": "increase", "when": "plateau"},
        {"shape": "avoid", "knob": "learning_rate", "trial": 2},
        {"shape": "avoid", "knob": "dropout", "trial": 1},
        {"shape": "keep", "knob": "dropout", "trial": 1},
        {"shape": "keep", "knob": "learning_rate", "trial": 2},
    ], trials, KNOBS, METRIC)
    assert texts == ["raise weight_decay when overfitting shows (as in #1)",
                     "avoid learning_rate 0.3 (#2 with it scored 0.6, under the median 0.85)",
                     "keep dropout near 0.3 (as in #1, val accuracy 0.91, among the three best)"]
    assert len(dropped) == 4


def test_the_advisors_pick_is_written_with_the_problem_it_acts_on_unless_code_cannot_back_it() -> None:
    best = record(0, 0.91, OVERFIT)
    option = Option(DEFAULT | {"weight_decay": 0.005}, "region", rank=1, of=4)
    option.changes = {"weight_decay": (0.0, 0.005)}

    def pick(cause: str) -> Candidate:
        candidate = Candidate(dict(option.config), "advisor", pick=2, departed=True, cause=cause,
                              choice={"mode": "scored"})
        return checked_candidate(candidate, best["config"], {}, KNOBS, option, best, METRIC, set())

    backed = pick("overfitting")
    assert backed.rationale.startswith("The Advisor picked candidate 2, from TPE's good region; TPE ranks it 1st of 4, "
                                       "against the best trial's overfitting (val loss rose from 0.35")
    assert backed.rationale.endswith("it moves weight_decay 0 -> 0.005.") and backed.replaced == []
    unseen = pick("plateau")
    assert "plateau" not in unseen.rationale and "the best trial's curves do not show it" in unseen.replaced[0]


def test_a_pick_that_also_moves_a_knob_against_its_cause_says_so() -> None:
    best = record(0, 0.91, OVERFIT, dropout=0.2)
    option = Option(DEFAULT | {"weight_decay": 0.005, "dropout": 0.0}, "tpe", rank=1, of=4)
    option.changes = {"weight_decay": (0.0, 0.005), "dropout": (0.2, 0.0)}
    candidate = Candidate(dict(option.config), "tpe", pick=0, departed=False, cause="overfitting",
                          choice={"mode": "scored"})
    checked = checked_candidate(candidate, best["config"], {}, KNOBS, option, best, METRIC, set())
    assert "it moves weight_decay 0 -> 0.005. It also moves dropout 0.2 -> 0, the other way." in checked.rationale


def test_a_curve_still_rising_at_its_last_epoch_is_answered_with_epochs_not_patience() -> None:
    """Early stopping fires only after epochs without gain: a run still improving at its end ran out of epochs."""
    rising = record(0, 0.88, [(0.70, 1.0, 0.9), (0.80, 0.7, 0.6), (0.88, 0.5, 0.45)])
    assert "stopped too early" in flags(rising["diagnostics"])
    menu = remedy_menu(TARGET.space.describe(), ["stopped too early"], rising, None)
    assert {"knob": "epochs", "direction": "increase", "cause": "stopped too early"} in menu
    assert all(step["knob"] != "early_stopping_patience" for step in menu)
