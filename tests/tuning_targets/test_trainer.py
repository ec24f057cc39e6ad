"""The one training loop: reporting, early stopping, kept weights, seeds, divergence."""

from __future__ import annotations

import math

import pytest
import torch
from recording import Recorder
from target_testkit import FAST_IMAGE, FAST_TABULAR, assert_diverges_then_recovers, quick_config

from tuning_targets.records import EpochRecord, TrialResult
from tuning_targets.registry import make_target
from tuning_targets.trainer import TrainSettings, lr_factor, make_optimizer, train


class Pruned(Exception):
    pass


class PruneAt(Recorder):
    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch(self, record: EpochRecord) -> None:
        super().on_epoch(record)
        if record.epoch == self.epoch:
            raise Pruned


def test_reporter_receives_one_on_epoch_per_epoch() -> None:
    target = make_target("iris")
    reporter = Recorder()
    result = target.run(quick_config(target, FAST_TABULAR, epochs=5), reporter)
    assert result.ok
    assert reporter.started == [5]
    assert [r.epoch for r in reporter.epochs] == [1, 2, 3, 4, 5]
    assert reporter.epochs == result.history
    assert reporter.ended == [result]
    for record in result.history:
        assert record.seconds >= 0 and record.lr == pytest.approx(0.03)
        assert math.isfinite(record.train_loss) and math.isfinite(record.val_loss)


def test_raising_from_on_epoch_stops_the_trial() -> None:
    target = make_target("iris")
    reporter = PruneAt(2)
    with pytest.raises(Pruned):
        target.run(quick_config(target, FAST_TABULAR, epochs=10), reporter)
    assert [r.epoch for r in reporter.epochs] == [1, 2]


def test_early_stopping_stops_after_patience_epochs_without_gain() -> None:
    target = make_target("iris")
    patience = 3
    result = target.run(quick_config(target, FAST_TABULAR, epochs=60, early_stopping_patience=patience))
    assert result.ok and result.best_epoch is not None
    assert len(result.history) < 60
    assert result.best_epoch == len(result.history) - patience
    best = result.history[result.best_epoch - 1].val_metric
    assert all(r.val_metric <= best for r in result.history[result.best_epoch:])
    assert all(r.val_metric < best for r in result.history[:result.best_epoch - 1])

    no_patience = target.run(quick_config(target, FAST_TABULAR, epochs=len(result.history) + 2))
    assert len(no_patience.history) == len(result.history) + 2


@pytest.mark.parametrize(("name", "learning_rate"), [("iris", 0.1), ("diabetes", 0.1)])
def test_best_epoch_weights_are_kept(name: str, learning_rate: float) -> None:
    target = make_target(name)
    config = quick_config(target, FAST_TABULAR, epochs=12, learning_rate=learning_rate)
    data = target.load_splits(config)
    torch.manual_seed(0)
    model = target.build_model(config, data)
    result = train(model, data, TrainSettings.from_config(config), task=target.task, device=torch.device("cpu"))
    assert result.ok and result.best_epoch is not None and result.val_metric is not None
    assert result.best_epoch < len(result.history), "this setup must keep an earlier epoch to test anything"
    metrics = [r.val_metric for r in result.history]
    best = max(metrics) if target.direction == "maximize" else min(metrics)
    assert result.val_metric == pytest.approx(best, abs=1e-6)
    assert metrics.index(best) + 1 == result.best_epoch

    # The model now holds the best epoch's weights: measuring it again gives the same figures.
    model.eval()
    with torch.no_grad():
        for x, y, reported in ((data.x_val, data.y_val, result.val_metric), (data.x_test, data.y_test, result.test_metric)):
            pred = model(x)
            if target.task == "classification":
                measured = (pred.argmax(1) == y).float().mean().item()
            else:
                measured = ((pred.squeeze(-1) - y).abs().mean() * data.y_scale).item()
            assert measured == pytest.approx(reported, rel=1e-5)


def _without_time(result: TrialResult) -> list[tuple[float, ...]]:
    return [(r.epoch, r.train_loss, r.val_loss, r.val_metric, r.lr) for r in result.history]


def test_the_same_seed_gives_identical_runs() -> None:
    target = make_target("digits")
    # Dropout and augmentation draw random numbers too, so both are on.
    config = quick_config(target, FAST_IMAGE, epochs=2, dropout=0.3, augmentation="light")
    first, second = target.run(config, seed=5), target.run(config, seed=5)
    other = target.run(config, seed=6)
    assert first.ok and second.ok and other.ok
    assert _without_time(first) == _without_time(second)
    assert (first.val_metric, first.test_metric, first.n_params) == (second.val_metric, second.test_metric, second.n_params)
    assert [r.train_loss for r in first.history] != [r.train_loss for r in other.history]


# --- divergence ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "optimizer"), [
    ("diabetes", "sgd"),
    ("diabetes", "adam"),
    ("iris", "adam"),
    ("digits", "sgd"),
    ("digits", "adam"),
])
def test_learning_rate_10_fails_as_diverged_and_the_next_trial_completes(name: str, optimizer: str) -> None:
    target = make_target(name)
    fast = FAST_IMAGE if name == "digits" else FAST_TABULAR
    assert_diverges_then_recovers(target, quick_config(target, fast, optimizer=optimizer, learning_rate=10.0))


# --- settings, optimisers and schedules ------------------------------------------------------------------

def test_train_settings_take_only_training_knobs() -> None:
    target = make_target("digits")
    settings = TrainSettings.from_config(target.default_config | {"learning_rate": 0.05, "epochs": 7})
    assert (settings.learning_rate, settings.epochs, settings.momentum) == (0.05, 7, 0.9)
    assert not hasattr(settings, "conv_channels")


@pytest.mark.parametrize(("name", "kind"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                            ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop)])
def test_every_optimizer_choice_trains(name: str, kind: type[torch.optim.Optimizer]) -> None:
    target = make_target("iris")
    config = quick_config(target, FAST_TABULAR, optimizer=name, learning_rate=0.01, momentum=0.5,
                          weight_decay=0.001, epochs=4, grad_clip=1.0, label_smoothing=0.1)
    assert isinstance(make_optimizer(TrainSettings.from_config(config), [torch.zeros(1, requires_grad=True)]), kind)
    result = target.run(config)
    assert result.ok and result.val_metric is not None and result.val_metric > 0.5  # three balanced classes
    with pytest.raises(ValueError, match="lbfgs"):
        make_optimizer(TrainSettings(optimizer="lbfgs"), [torch.zeros(1, requires_grad=True)])


def test_lr_schedules() -> None:
    total = 100
    for schedule in ("constant", "cosine", "step", "warmup_cosine"):
        factors = [lr_factor(schedule, s, total) for s in range(total + 1)]
        assert all(0.0 <= f <= 1.0 for f in factors), schedule
    assert {lr_factor("constant", s, total) for s in range(total)} == {1.0}
    cosine = [lr_factor("cosine", s, total) for s in range(total + 1)]
    assert cosine[0] == 1.0 and cosine[-1] == pytest.approx(0.0) and cosine == sorted(cosine, reverse=True)
    assert [lr_factor("step", s, total) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, .1, .1, .01, .01])
    warm = [lr_factor("warmup_cosine", s, total) for s in range(total + 1)]
    peak = warm.index(max(warm))
    assert 0 < peak <= 10 and warm[0] == 0.0 and warm[-1] == pytest.approx(0.0)
    assert warm[:peak + 1] == sorted(warm[:peak + 1]) and warm[peak:] == sorted(warm[peak:], reverse=True)
    with pytest.raises(ValueError, match="sawtooth"):
        lr_factor("sawtooth", 1, total)


def test_epoch_records_follow_the_schedule() -> None:
    target = make_target("iris")
    result = target.run(quick_config(target, FAST_TABULAR, epochs=4, lr_schedule="cosine"))
    lrs = [r.lr for r in result.history]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 0.03 and lrs[-1] < lrs[0] / 4
