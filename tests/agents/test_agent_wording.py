"""The checks on an LLM's words: what a 135M model wrote fails, what a careful engineer writes stands.

The failing texts are replies SmolLM2-135M gave in real runs on digits.
"""

from __future__ import annotations

import pytest

from agents.wording import (
    check_guidance,
    check_reason,
    check_step,
    contradictions,
    grounding,
    outcome_claims,
    ungrounded,
    word_problems,
)
from tuning_targets import make_target

KNOBS = {k["name"]: k for k in make_target("digits").space.describe()}
FACTS = grounding({"val_metric": 0.74537, "config": {"learning_rate": 0.01, "dropout": 0.0}},
                  "val loss reverses direction on 0% of steps; 17 epochs; gap -0.11", [0.8611, 0.04])


@pytest.mark.parametrize("text, changes", [
    ("decrease learning rate", {"learning_rate": (0.01, 0.1)}),
    ("Lower the learning_rate, the loss is noisy", {"learning_rate": (0.01, 0.1)}),
    ("dropout should go down to curb noise in training", {"dropout": (0.0, 0.3)}),
    ("increase optimizer so that training converges", {"optimizer": ("sgd", "adam")}),
])
def test_a_direction_that_contradicts_the_change_or_moves_a_categorical_fails(text: str,
                                                                              changes: dict[str, tuple[object, object]]) -> None:
    assert contradictions(text, changes, KNOBS)


@pytest.mark.parametrize("text, changes", [
    ("more dropout to reduce overfitting, the val loss rises while train loss falls", {"dropout": (0.0, 0.3)}),
    ("raise the batch size: steps are noisy and each epoch is slow", {"batch_size": (32, 64)}),
    ("stronger augmentation should widen the data the net sees", {"augmentation": ("none", "light")}),
    ("switch to adam, which copes better with the flat loss early on", {"optimizer": ("sgd", "adam")}),
    ("a lower learning rate should stop the loss from oscillating", {"learning_rate": (0.05, 0.01)}),
])
def test_sentences_a_careful_engineer_writes_stand(text: str, changes: dict[str, tuple[object, object]]) -> None:
    assert check_reason(text, changes, KNOBS, max_chars=160, facts=FACTS) == []


@pytest.mark.parametrize("text", [".*/48", "1.97; max-loss: 0.256; best eval: 0.2;", "][", "more than one",
                                  "maximize val accuracy",
                                  "learning_rate=0.15, batch_size:256; epochs:17; momentum:1; weight_decay:1.38;"])
def test_texts_that_are_not_words_fail(text: str) -> None:
    assert word_problems(text, max_chars=360, knobs=list(KNOBS), echoes=["maximize val accuracy"])


def test_numbers_must_come_from_the_evidence() -> None:
    assert ungrounded("val accuracy rose to 0.745 after 17 epochs", FACTS) == []
    assert ungrounded("the gap is -0.11 and the curve reverses on 4% of steps", FACTS) == []  # 0.04 is a fact
    invented = ungrounded("due to the high value of learning rate (0.2596) and a score of 2.437", FACTS)
    assert invented == ["cites 0.2596, a number not in the evidence", "cites 2.437, a number not in the evidence"]
    assert ungrounded("try two or 3 more epochs", FACTS) == []  # small counts


def test_guidance_that_dumps_a_config_or_leaves_the_space_is_refused() -> None:
    assert check_guidance("learning_rate=0.15, batch_size:256; epochs:17; momentum:1; weight_decay:1.38",
                          KNOBS, max_chars=360)
    assert any("outside its range" in p for p in check_guidance(
        "Keep momentum at 1.5 and never go below it in later rounds", KNOBS, max_chars=360))
    assert check_guidance("Learning rates above 0.1 diverged; stay below 0.03.\nAdam helped twice; keep it.",
                          KNOBS, max_chars=360) == []


def test_a_gradient_step_is_judged_apart_from_its_reason() -> None:
    wrong, _ = check_step("batch_norm", "decrease", "batch norm steadies the training curve", KNOBS, max_chars=160)
    assert wrong and "categorical" in wrong[0]
    wrong, _ = check_step("optimizer", "switch to lbfgs", "a second-order method may converge faster", KNOBS,
                          max_chars=160)
    assert wrong and "not a choice" in wrong[0]
    wrong, reason = check_step("dropout", "increase", "lower dropout helps the model fit the data", KNOBS,
                               max_chars=160)
    assert not wrong and reason == ["its reason moves dropout the other way from 'increase'"]
    assert check_step("conv_channels", "increase", "wider convolutions would lift the plateau at 0.745",
                      KNOBS, max_chars=160, facts=FACTS) == ([], [])


# Analyses SmolLM2-135M wrote in a real digits run (lgt tune --target digits --trials 6), against what code knew.
def test_an_analysis_that_calls_a_worse_trial_better_is_refused() -> None:
    for text in (("The newest trial is a validation of the previous one, but it's more accurate and results in "
                  "better performance."),
                 "The newest trial results in a 0.9954, the newest trial is actually more accurate than the best one."):
        problems = outcome_claims(text, new_best=False, first=False)
        assert problems and "not better than the best so far" in problems[0], text


def test_the_first_trial_has_nothing_before_it_to_compare_with() -> None:
    text = "The new best is the final one, and it's better than before. The newest trial was a big hit."
    assert outcome_claims(text, new_best=True, first=True) == [
        "compares the first trial with one before it; there is none"]
    assert outcome_claims(text, new_best=True, first=False) == []


def test_true_outcome_sentences_pass_negations_included() -> None:
    assert outcome_claims("Validation accuracy rose to 0.99, a clear improvement over the best so far.",
                          new_best=True, first=False) == []
    assert outcome_claims("The trial is not better than the best; its loss stalled after epoch 2.",
                          new_best=False, first=False) == []
    assert outcome_claims("Accuracy did not improve and the loss stayed flat.", new_best=False, first=False) == []
    assert outcome_claims("It is worse than the best so far.", new_best=True, first=False)
