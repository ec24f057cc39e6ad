"""The one training loop every target uses.

Speed comes from holding each split as one tensor (on the GPU when it fits)
and slicing batches out of it: no DataLoader, no per-sample transforms, no
host sync per batch. Augmentation, when a target has it, runs on the whole
batch on the device.

A trial that diverges ends as `failed` with its reason; it never raises, so
a tuning session survives any config a tuner may try.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np
import torch
from torch import nn

from tuning_targets.records import EpochRecord, Reporter, TrialResult

Task = Literal["classification", "regression"]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

# Loss above this multiple of the first batches' loss counts as exploding.
EXPLODE_FACTOR = 50.0
# Host syncs are costly on a GPU, so divergence is checked every few batches.
CHECK_EVERY = 16
# Evaluation batch size per device type. A GPU wants big batches; on a CPU big ones spill the
# activations out of cache (for the MNIST CNN, batches of 256 evaluate 2x faster than 2048).
# Each sample's output does not depend on the batch it is in, so the metrics are the same.
EVAL_BATCH = {"cuda": 2048}
EVAL_BATCH_DEFAULT = 256


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TensorSplits:
    """Train, validation and test tensors; `y_scale` undoes target scaling.

    Regression targets are standardised for training; metrics are reported
    in the original units, so `y_scale` is the training std of the target.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_scale: float = 1.0

    def to(self, device: torch.device) -> TensorSplits:
        moved = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return TensorSplits(**moved)

    def nbytes(self) -> int:
        return sum(v.element_size() * v.nelement() for v in vars(self).values() if isinstance(v, torch.Tensor))


@dataclass
class TrainSettings:
    """The training-strategy and hyperparameter knobs every target shares."""

    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 3
    lr_schedule: str = "constant"
    early_stopping_patience: int = 0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TrainSettings:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in config.items() if k in names})  # type: ignore[arg-type]


def make_optimizer(settings: TrainSettings, params: Any) -> torch.optim.Optimizer:
    lr, wd, mom = settings.learning_rate, settings.weight_decay, settings.momentum
    name = settings.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd, nesterov=mom > 0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=mom, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}")


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at optimiser step `step` of `total`."""
    t = min(step / max(total, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "step":
        return 0.1 ** (int(t >= 0.5) + int(t >= 0.75))
    if schedule == "warmup_cosine":
        warm = 0.1
        return t / warm if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))
    raise ValueError(f"unknown lr_schedule {schedule!r}")


def _metric(task: Task, pred: torch.Tensor, y: torch.Tensor, y_scale: float) -> tuple[float, dict[str, float]]:
    """The target's metric (accuracy, or MAE in original units) plus extras."""
    if task == "classification":
        return (pred.argmax(1) == y).float().mean().item(), {}
    err = (pred.squeeze(-1).float() - y) * y_scale
    mae = err.abs().mean().item()
    ss_res = (err**2).sum()
    ss_tot = (((y - y.mean()) * y_scale) ** 2).sum().clamp_min(1e-12)
    return mae, {"r2": (1 - ss_res / ss_tot).item(), "rmse": err.pow(2).mean().sqrt().item()}


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, task: Task,
              y_scale: float, amp: bool) -> tuple[float, float, dict[str, float]]:
    model.eval()
    device = next(model.parameters()).device
    preds = []
    chunk = EVAL_BATCH.get(device.type, EVAL_BATCH_DEFAULT)
    for start in range(0, len(x), chunk):
        with torch.autocast(device.type, enabled=amp):
            preds.append(model(x[start:start + chunk].to(device)).float())
    pred = torch.cat(preds)
    y = y.to(device)
    target = y if task == "classification" else y.unsqueeze(-1)
    loss = loss_fn(pred, target).item()
    metric, extra = _metric(task, pred, y, y_scale)
    return loss, metric, extra


def train(
    model: nn.Module,
    data: TensorSplits,
    settings: TrainSettings,
    *,
    task: Task,
    reporter: Reporter | None = None,
    seed: int = 0,
    augment: Augment | None = None,
    device: torch.device | None = None,
) -> TrialResult:
    """Train `model` on `data` and return its history and metrics.

    The weights kept at the end are those of the best validation epoch,
    and the test metric is measured on them.
    """
    reporter = reporter or Reporter()
    device = device or pick_device()
    maximize = task == "classification"
    started = time.perf_counter()
    seed_everything(seed)
    data = _place(data, device)
    model = model.to(device)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    optimizer = make_optimizer(settings, model.parameters())
    if task == "classification":
        loss_fn: nn.Module = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
        eval_loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        loss_fn = eval_loss_fn = nn.MSELoss()
    n = len(data.x_train)
    batch_size = min(settings.batch_size, n)
    steps_per_epoch = max(1, n // batch_size)  # drop the ragged last batch: BatchNorm dislikes size 1
    total_steps = steps_per_epoch * settings.epochs
    shuffle_gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed)
    n_params = sum(p.numel() for p in model.parameters())

    history: list[EpochRecord] = []
    best_metric: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    best_val_extra: dict[str, float] = {}
    best_epoch = 0
    first_loss: float | None = None
    stale = 0
    reporter.on_start(settings.epochs)

    def fail(reason: str) -> TrialResult:
        result = TrialResult("failed", None, None, history, fail_reason=reason,
                             seconds=time.perf_counter() - started, n_params=n_params)
        reporter.on_end(result)
        return result

    step = 0
    for epoch in range(1, settings.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=shuffle_gen).to(data.x_train.device)
        window = torch.zeros((), device=device)
        epoch_loss = torch.zeros((), device=device)
        for b in range(steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = settings.learning_rate * lr_factor(settings.lr_schedule, step, total_steps)
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb = data.x_train[idx].to(device, non_blocking=True)
            yb = data.y_train[idx].to(device, non_blocking=True)
            if augment is not None:
                xb = augment(xb, aug_gen)
            with torch.autocast(device.type, enabled=amp):
                out = model(xb)
                loss = loss_fn(out.float(), yb if task == "classification" else yb.unsqueeze(-1))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if settings.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            if first_loss is None:
                # The untrained model's loss on its first batch: one host sync per trial.
                first_loss = max(loss.item(), 1e-3)
            window += loss.detach()
            if (b + 1) % CHECK_EVERY == 0 or b == steps_per_epoch - 1:
                count = (b % CHECK_EVERY) + 1
                mean = window.item() / count
                if not math.isfinite(mean):
                    return fail(f"diverged: training loss became {mean} in epoch {epoch} "
                                f"(learning rate {settings.learning_rate:g} is likely too high)")
                if mean > EXPLODE_FACTOR * first_loss:
                    return fail(f"diverged: training loss exploded to {mean:.3g} in epoch {epoch}, "
                                f"{mean / first_loss:.0f}x its starting value")
                epoch_loss += window
                window.zero_()
        train_loss = epoch_loss.item() / steps_per_epoch
        val_loss, val_metric, val_extra = _evaluate(model, data.x_val, data.y_val, eval_loss_fn, task, data.y_scale, amp)
        if not math.isfinite(val_loss) or val_loss > EXPLODE_FACTOR * first_loss:
            return fail(f"diverged: validation loss became {val_loss:.3g} in epoch {epoch}")
        record = EpochRecord(epoch, train_loss, val_loss, val_metric, optimizer.param_groups[0]["lr"],
                             time.perf_counter() - epoch_start)
        history.append(record)
        improved = best_metric is None or (val_metric > best_metric if maximize else val_metric < best_metric)
        if improved:
            best_metric, best_val_extra, best_epoch, stale = val_metric, val_extra, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        reporter.on_epoch(record)
        if settings.early_stopping_patience and stale >= settings.early_stopping_patience:
            break

    assert best_state is not None and best_metric is not None
    model.load_state_dict(best_state)
    # The best epoch's validation pass ran on exactly these weights, so its figures stand;
    # evaluating them again would only cost time.
    _, test_metric, test_extra = _evaluate(model, data.x_test, data.y_test, eval_loss_fn, task, data.y_scale, amp)
    extra = {f"val_{k}": v for k, v in best_val_extra.items()} | {f"test_{k}": v for k, v in test_extra.items()}
    result = TrialResult("complete", best_metric, test_metric, history, best_epoch=best_epoch,
                         seconds=time.perf_counter() - started, n_params=n_params, extra_metrics=extra)
    reporter.on_end(result)
    return result


def _place(data: TensorSplits, device: torch.device) -> TensorSplits:
    """Put the data on the device when it fits in half the free memory."""
    if device.type != "cuda":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    return data.to(device) if data.nbytes() < free // 2 else data
