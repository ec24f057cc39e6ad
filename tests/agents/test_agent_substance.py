"""Free prose must say something: name a knob of the run or something a reader can observe, and no filler.

The refused sentences are every one quoted in issue 18, all standing in
committed change logs of SmolLM2-135M runs (they passed the older checks),
plus a few more from the same logs. The twenty that stand were written by
hand as a capable model would write them; each must stand as written,
through every check a reason, a gradient reason or an analysis passes.
"""

from __future__ import annotations

import pytest

from agents.wording import check_reason, check_step, diagnosis_claims, says_nothing
from tuning_targets import make_target

KNOBS = {k["name"]: k for k in make_target("digits").space.describe()}

EMPTY = [
    # verdicts
    ("The newest trial is the newest one, and it's a lot of work to do. I'm going to give you 4 more trials that "
    "will help you with your data."),
    "The new trial is a great way to optimize the hyperparameter tuning and increase accuracy.",
    ("The newest trial's dataset: #9, The newest data set is the latest one that has been updated with a new dataset "
    "and it will be released in 20"),
    ("The newest trial is a great way to improve your data analysis and machine learning. It's more accurate, faster, "
    "and gives you the best of it"),
    # the Advisor's why
    "maximally improve the results",
    "maximizing val accuracy for up to two knobs",
    "maximise val accuracy by switching to the next best configuration",
    "maximing val accuracy in data set with multiple knobs; optimal to select the best configuration for each of 3k",
    "maximally improve the last one",
    # gradient reasons
    "maximize val accuracy by switching on multiple channels into one set up for training a neural network to make",
    "maximize the best value of learning rate (satisfies maximization problem) and then increase it for next epochs",
    "minimizing the weight of one channel in one way, it's more efficient and faster than switching on multiple chn",
    "maximize val accuracy (non-linear)",
    # expected effects, and vague sentences that cite nothing a reader can check
    "improve performance of the best configuration (optimal one)",
    "a gradient twice as steep as the previous one",
    "the new dataset consisted of 128 images",
]

SAYS_SOMETHING = [
    "Validation loss flattened after epoch 7 while training loss kept falling, so raise weight_decay.",
    "Val accuracy rose from 0.861 to 0.995, the first trial to clear 0.9.",
    "The train/val gap widened to 0.3 after epoch 5; more dropout should close it.",
    "Lower the learning rate: val loss oscillated between epochs instead of settling.",
    "Training loss barely moved over 3 epochs, so this learning rate is far too small.",
    "Accuracy was still climbing at the final epoch, so more epochs should pay off.",
    "Adam converged in half the epochs SGD needed on this data.",
    "Switch optimizer to adamw: plain SGD stalled at 0.75 accuracy.",
    "Batch norm steadied the early epochs, where the loss spiked before.",
    "The best three trials all used dropout between 0.1 and 0.3.",
    "With label smoothing at 0.1 the val loss stopped rising after epoch 4.",
    "Raising hidden_units from 64 to 256 cut the training loss by half without hurting validation.",
    "Val accuracy dropped from 0.98 to 0.93 once the augmentation was switched to strong.",
    "The run peaked at epoch 3 of 20 and declined after it, so fewer epochs would save time.",
    "A smaller batch size made the curve noisier but reached a higher validation accuracy.",
    "Gradient clipping at 1.0 removed the loss spikes seen in the first two epochs.",
    "The cosine schedule kept improving validation accuracy until the last epoch.",
    "Wider conv channels fit the training set faster: train loss fell below val loss by epoch 6.",
    "Weight decay above 0.005 slowed convergence without closing the gap.",
    "Expect val accuracy to rise above 0.99 as the plateau at 0.98 came from too few epochs.",
]


@pytest.mark.parametrize("text", EMPTY)
def test_what_the_embedded_model_wrote_is_refused(text: str) -> None:
    assert says_nothing(text, list(KNOBS))
    assert check_reason(text, {}, KNOBS, max_chars=200)


@pytest.mark.parametrize("text", SAYS_SOMETHING)
def test_what_a_capable_model_writes_stands_as_written(text: str) -> None:
    assert says_nothing(text, list(KNOBS)) == []
    assert check_reason(text, {}, KNOBS, max_chars=140) == []  # as a reason, an expected effect or an analysis
    assert check_step("learning_rate", "decrease", text, KNOBS, max_chars=140) == ([], [])  # as a gradient reason


def test_a_diagnosis_the_flags_do_not_show_is_refused_and_a_negation_is_not_a_claim() -> None:
    assert diagnosis_claims("The model is overfitting: val loss turned up.", ["plateau"])
    assert diagnosis_claims("Training diverged in epoch 2.", [])
    assert diagnosis_claims("The model is overfitting: val loss turned up.", ["overfitting"]) == []
    assert diagnosis_claims("No sign of overfitting; val loss kept falling.", []) == []
