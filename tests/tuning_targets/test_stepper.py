"""The trainer stepped an epoch at a time: snapshots, restores, knob changes between epochs."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from target_testkit import FAST_IMAGE, FAST_TABULAR, quick_config
from torch import nn

from tuning_targets.base import Target
from tuning_targets.records import EpochRecord, TrialResult
from tuning_targets.registry import make_target
from tuning_targets.trainer import RefusedChange, TrainingRun, TrainSettings, run_to_end, train

CPU = torch.device("cpu")
# The knobs issue 6 names as changeable inside a run; every other knob is structural.
DYNAMIC = {"learning_rate", "weight_decay", "momentum", "dropout", "label_smoothing", "augmentation", "grad_clip"}


def digits_run(seed: int = 0, **changes: Any) -> tuple[Target, TrainingRun]:
    """A digits run whose epochs draw from every random stream: shuffling, dropout, augmentation."""
    target = make_target("digits")
    config = quick_config(target, FAST_IMAGE, epochs=4, dropout=0.3, augmentation="light", optimizer="sgd",
                          momentum=0.9, learning_rate=0.05) | changes
    return target, target.start_run(config, seed=seed, device=CPU)


def weights(run: TrainingRun) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in run.model.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def no_time(record: EpochRecord | None) -> tuple[Any, ...]:
    assert record is not None
    return (record.epoch, record.train_loss, record.val_loss, record.val_metric, record.lr)


def outcome(result: TrialResult) -> tuple[Any, ...]:
    return (result.status, result.val_metric, result.test_metric, result.best_epoch,
            [no_time(r) for r in result.history])


# --- snapshot and restore ---------------------------------------------------------------------------------

def test_restore_brings_back_the_same_weights_and_the_same_random_draws() -> None:
    _, run = digits_run()
    run.step()
    snap = run.snapshot()
    before = weights(run)

    def draws() -> tuple[torch.Tensor, ...]:
        """The first batch's indices, its augmentation and a dropout mask, as the next epoch would draw them."""
        order = torch.randperm(run.n, generator=run.shuffle_gen)
        batch = run.data.x_train[order[:run.batch_size]]
        assert run.augment is not None
        return order, run.augment(batch, run.aug_gen), torch.rand(5), torch.tensor(np.random.rand(2)), \
            torch.tensor(random.random())

    first = draws()
    run.step()  # moves the weights and every stream on
    assert not same_weights(before, weights(run))
    run.restore(snap)
    assert same_weights(before, weights(run))
    second = draws()
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_an_epoch_trained_twice_from_one_snapshot_is_identical_and_the_snapshot_survives() -> None:
    _, run = digits_run()
    run.step()
    snap = run.snapshot()
    runs: list[tuple[tuple[Any, ...], dict[str, torch.Tensor], torch.Tensor]] = []
    for _ in range(3):  # the third proves training did not write into the snapshot
        run.restore(snap)
        epoch = no_time(run.step())
        runs.append((epoch, weights(run), run.optimizer.state_dict()["state"][0]["momentum_buffer"].clone()))
    for epoch, state, momentum in runs[1:]:
        assert epoch == runs[0][0]
        assert same_weights(state, runs[0][1])
        assert torch.equal(momentum, runs[0][2])
    assert snap.on_device  # on the CPU it always stays where it is


def test_a_snapshot_restores_adam_moments_and_the_bookkeeping() -> None:
    target = make_target("iris")
    run = target.start_run(quick_config(target, FAST_TABULAR, epochs=5, dropout=0.2), seed=1, device=CPU)
    run.step()
    snap = run.snapshot()
    history, best_epoch = list(run.history), run.best_epoch
    run.step()
    run.step()
    run.restore(snap)
    assert run.epoch == 1 and run.history == history and run.best_epoch == best_epoch
    rest = [no_time(run.step()) for _ in range(4)]
    fresh = target.start_run(quick_config(target, FAST_TABULAR, epochs=5, dropout=0.2), seed=1, device=CPU)
    assert [no_time(fresh.step()) for _ in range(5)][1:] == rest


def test_snapshots_leave_the_run_as_it_would_have_been() -> None:
    """Taking and restoring snapshots mid-run changes nothing in the final result."""
    _, plain = digits_run(seed=3)
    expected = run_to_end(plain)
    _, run = digits_run(seed=3)
    while not run.done:
        snap = run.snapshot()
        run.step()
        run.restore(snap)
        run.step()
    assert outcome(run.finish()) == outcome(expected)


# --- train() is a loop over the stepper ------------------------------------------------------------------

def test_train_target_run_and_a_manual_step_loop_agree() -> None:
    target = make_target("digits")
    config = quick_config(target, FAST_IMAGE, epochs=3, dropout=0.3, augmentation="light", lr_schedule="cosine")
    by_run = target.run(config, seed=7, device=CPU)
    data = target.load_splits(config)
    torch.manual_seed(7)
    by_train = train(target.build_model(config, data), data, TrainSettings.from_config(config), task="classification",
                     seed=7, augment=target.augmenter(config), device=CPU)
    stepped = target.start_run(config, seed=7, device=CPU)
    records = [stepped.step() for _ in range(3)]
    assert stepped.done and all(r is not None for r in records)
    by_steps = stepped.finish()
    assert outcome(by_run) == outcome(by_train) == outcome(by_steps)
    with pytest.raises(RuntimeError, match="over"):
        stepped.step()


def test_a_diverged_epoch_fails_the_run_until_a_snapshot_takes_it_back() -> None:
    target = make_target("digits")
    config = quick_config(target, FAST_IMAGE, optimizer="sgd", learning_rate=10.0, epochs=2)
    data = target.load_splits(config)
    run = TrainingRun(target.build_model(config, data), data, TrainSettings.from_config(config),
                      task="classification", device=CPU)
    snap = run.snapshot()
    assert run.step() is None and run.done
    assert run.fail_reason is not None and "diverged" in run.fail_reason
    run.restore(snap)
    assert run.fail_reason is None and not run.done
    run.apply({"learning_rate": 0.003})
    record = run.step()
    assert record is not None and record.lr == pytest.approx(0.003)


# --- changing knobs inside a run --------------------------------------------------------------------------

def test_apply_moves_every_dynamic_knob_where_the_next_epoch_reads_it() -> None:
    _, run = digits_run(augmentation="none")
    run.step()
    assert run.augment is None
    notes = run.apply({"learning_rate": 0.01, "momentum": 0.5, "weight_decay": 0.001, "dropout": 0.1,
                       "label_smoothing": 0.1, "grad_clip": 1.0, "augmentation": "strong"})
    assert notes == []
    group = run.optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (0.01, 0.5, 0.001, True)
    dropouts = [m for m in run.model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(m.p == 0.1 for m in dropouts)
    assert run.loss_fn.label_smoothing == 0.1 and run.settings.grad_clip == 1.0
    assert run.augment is not None
    assert {k: run.config[k] for k in ("learning_rate", "dropout", "augmentation")} == \
        {"learning_rate": 0.01, "dropout": 0.1, "augmentation": "strong"}
    record = run.step()
    assert record is not None and record.lr == pytest.approx(0.01)
    assert run.dynamic_values()["augmentation"] == "strong"
    run.apply({"augmentation": "none"})
    assert run.augment is None


def test_a_structural_knob_is_refused_and_nothing_changes() -> None:
    _, run = digits_run()
    run.step()
    lr = run.settings.learning_rate
    with pytest.raises(RefusedChange) as refused:
        run.apply({"learning_rate": 0.001, "batch_size": 64, "conv_blocks": 2, "warp_speed": 9})
    assert refused.value.reasons == {
        "batch_size": "structural knob batch_size cannot change inside a run",
        "conv_blocks": "structural knob conv_blocks cannot change inside a run",
        "warp_speed": "unknown knob warp_speed",
    }
    assert run.settings.learning_rate == lr and run.config["learning_rate"] == lr and run.config["batch_size"] == 32
    assert run.refusals({"optimizer": "adam"}) == {"optimizer": "structural knob optimizer cannot change inside a run"}


def test_momentum_under_adam_is_noted_and_rmsprop_gains_a_momentum_buffer() -> None:
    target = make_target("iris")
    adam = target.start_run(quick_config(target, FAST_TABULAR, epochs=3), device=CPU)
    adam.step()
    assert adam.apply({"momentum": 0.5}) == ["momentum has no effect on adam"]
    rms = target.start_run(quick_config(target, FAST_TABULAR, optimizer="rmsprop", momentum=0.0, epochs=3),
                           device=CPU)
    rms.step()  # RMSprop's state now exists without a momentum buffer
    rms.apply({"momentum": 0.5})
    assert rms.step() is not None


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer", "diabetes"])
def test_every_dynamic_knob_of_every_target_can_change_inside_a_run(name: str) -> None:
    target = make_target(name)
    dynamic = set(target.dynamic_knobs())
    assert dynamic == DYNAMIC & set(target.space.knobs)
    run = target.start_run(quick_config(target, FAST_IMAGE if name == "digits" else FAST_TABULAR), device=CPU)
    assert run.refusals({k: target.default_config[k] for k in dynamic}) == {}
    structural = {k: v for k, v in target.default_config.items() if k not in dynamic}
    assert set(run.refusals(structural)) == set(structural)


def test_label_smoothing_is_refused_for_regression_runs() -> None:
    target = make_target("diabetes")
    data = target.load_splits(target.default_config)
    run = TrainingRun(target.build_model(target.default_config, data), data,
                      TrainSettings.from_config(target.default_config), task="regression", device=CPU)
    assert run.refusals({"label_smoothing": 0.1}) == {"label_smoothing": "label_smoothing applies to classification only"}
