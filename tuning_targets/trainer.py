"""The one training loop every torch model uses (the MLP of the tabular targets, the CNN of the image ones).

Speed comes from holding each split as one tensor (on the GPU when it fits)
and slicing batches out of it: no DataLoader, no per-sample transforms, no
host sync per batch. Augmentation, when a target has it, runs on the whole
batch on the device.

A trial that diverges ends as `failed` with its reason; it never raises, so
a tuning session survives any config a tuner may try. So does a trial that
runs out of memory, or whose data a target refuses to build up front
(`TrialRefused`, e.g. polynomial features too wide for this machine).

`TrainingRun` is the loop, one epoch per `step()`, so that agents can change
dynamic knobs between epochs and check a change by training an epoch twice
from a snapshot; `train()` just steps it to the end.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lgt.direction import is_better
from tuning_targets.metrics import EXTRAS, metric_direction
from tuning_targets.records import EpochRecord, Reporter, TrialResult
from tuning_targets.snapshot import RngState, clone_tree, keep_on_device, tensor_bytes
from tuning_targets.stepping import (
    ModelRun,
    RefusedChange,
    TrialRefused,
    out_of_memory_reason,
    run_to_end,
    structural_reason,
)

__all__ = ["Augment", "KnobSetter", "ModelRun", "RefusedChange", "Task", "TensorSplits", "TrainSettings",
           "TrainingRun", "TrialRefused", "is_out_of_memory", "out_of_memory_reason", "pick_device", "run_to_end",
           "structural_reason", "train"]

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
# The dropout layers whose rate the `dropout` knob moves during a run: torch's public classes, listed by name
# (they are the subclasses of torch's private `_DropoutNd`, which is deliberately not imported or tested against:
# no private torch API is used here).
DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` says an allocation failed.

    numpy raises `MemoryError` (its `_ArrayMemoryError`), CUDA
    `torch.OutOfMemoryError`, and torch's CPU allocator a plain
    RuntimeError whose message says it cannot allocate.
    """
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text)


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
        moved: dict[str, Any] = {k: v.to(device, non_blocking=True) for k, v in vars(self).items()
                                 if isinstance(v, torch.Tensor)}
        return dataclasses.replace(self, **moved)

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
        return cls(**{k: v for k, v in config.items() if k in names})


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


def _metric(task: Task, pred: torch.Tensor, y: torch.Tensor, y_scale: float,
            metric: str | None = None) -> tuple[float, dict[str, float]]:
    """The chosen metric (default: accuracy, or MAE in original units) plus the task's other scores as extras."""
    if task == "classification":
        accuracy = (pred.argmax(1) == y).float().mean().item()
        if metric in (None, "accuracy"):
            return accuracy, {}
        scores = {"accuracy": accuracy, "log_loss": F.cross_entropy(pred.float(), y).item()}
    else:
        err = (pred.squeeze(-1).float() - y) * y_scale
        ss_res = (err**2).sum()
        ss_tot = (((y - y.mean()) * y_scale) ** 2).sum().clamp_min(1e-12)
        scores = {"mae": err.abs().mean().item(), "r2": (1 - ss_res / ss_tot).item(),
                  "rmse": err.pow(2).mean().sqrt().item()}
    name = metric or "mae"
    return scores[name], {k: scores[k] for k in EXTRAS[name]}


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, task: Task,
              y_scale: float, amp: bool, metric: str | None = None) -> tuple[float, float, dict[str, float]]:
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
    value, extra = _metric(task, pred, y, y_scale, metric)
    return loss, value, extra


# Knobs the trainer itself can change between epochs of one run. A target adds its own
# (say, augmentation strength) as setters; every other knob is structural.
TRAINER_DYNAMIC = ("learning_rate", "momentum", "weight_decay", "label_smoothing", "grad_clip", "dropout")
# Bookkeeping a snapshot carries besides weights, optimiser and RNG.
_PROGRESS = ("epoch", "step_count", "first_loss", "best_metric", "best_state", "best_val_extra", "best_epoch",
             "stale", "fail_reason")

KnobSetter = Callable[["TrainingRun", Any], None]


@dataclass(frozen=True)
class RunSnapshot:
    """Everything that decides how the next epoch trains; see `TrainingRun.snapshot`."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    rng: RngState
    settings: TrainSettings
    config: dict[str, Any]
    dropout: tuple[float, ...]
    augment: Augment | None
    progress: dict[str, Any]
    history: tuple[EpochRecord, ...]
    on_device: bool


class TrainingRun(ModelRun):
    """One torch model's training, an epoch at a time.

    `train()` is a loop over `step()`; in-run adaptation uses the rest: it
    changes dynamic knobs between epochs with `apply()`, and for an A/B
    check trains one epoch twice from a `snapshot()` with `restore()` in
    between. `finish()` measures the test metric on the best epoch's weights.

    Args:
        model, data, settings, task, seed, augment, device: as for `train()`.
        config: The trial's full config, kept current by `apply()` (default:
            the training settings).
        dynamic: Knobs that may change inside the run (default: all the
            trainer and `setters` support). Targets pass their space's
            dynamic knobs.
        setters: Target-specific dynamic knobs, e.g. augmentation strength.
        started: `time.perf_counter()` at which the trial's clock started.
        metric: What decides the best epoch and early stopping (see
            `tuning_targets.metrics`); default accuracy or MAE by task.
    """

    def __init__(self, model: nn.Module, data: TensorSplits, settings: TrainSettings, *, task: Task, seed: int = 0,
                 augment: Augment | None = None, device: torch.device | None = None,
                 config: dict[str, Any] | None = None, dynamic: Collection[str] | None = None,
                 setters: dict[str, KnobSetter] | None = None, started: float | None = None,
                 metric: str | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.device = device or pick_device()
        self.task: Task = task
        self.metric = metric or ("accuracy" if task == "classification" else "mae")
        self.direction = metric_direction(self.metric)
        seed_everything(seed)
        self.data = _place(data, self.device)
        self.model = model.to(self.device)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.settings = copy.copy(settings)  # apply() changes it; the caller's copy stays as given
        self.optimizer = make_optimizer(self.settings, self.model.parameters())
        if task == "classification":
            self.loss_fn: nn.Module = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
            self.eval_loss_fn: nn.Module = nn.CrossEntropyLoss()
        else:
            self.loss_fn = self.eval_loss_fn = nn.MSELoss()
        self.n = len(self.data.x_train)
        self.batch_size = min(settings.batch_size, self.n)
        self.steps_per_epoch = max(1, self.n // self.batch_size)  # drop the ragged last batch: BatchNorm dislikes size 1
        self.total_steps = self.steps_per_epoch * settings.epochs
        self.shuffle_gen = torch.Generator().manual_seed(seed)
        self.aug_gen = torch.Generator(device=self.device).manual_seed(seed)
        self.augment = augment
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self._dropouts = [m for m in self.model.modules() if isinstance(m, DROPOUTS)]
        self.config: dict[str, Any] = dict(config) if config is not None else dataclasses.asdict(self.settings)
        self._config_given = config is not None
        self.setters = dict(setters or {})
        self.supported = frozenset(TRAINER_DYNAMIC) | frozenset(self.setters)
        self.dynamic = frozenset(self.supported if dynamic is None else dynamic)

        self.history: list[EpochRecord] = []
        self.epoch = 0
        self.step_count = 0
        self.first_loss: float | None = None
        self.best_metric: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val_extra: dict[str, float] = {}
        self.best_epoch = 0
        self.stale = 0
        self.fail_reason: str | None = None
        self._finished = False

    # --- progress -------------------------------------------------------------------------------------

    @property
    def planned_epochs(self) -> int:
        return self.settings.epochs

    @property
    def done(self) -> bool:
        """True once the planned epochs ran, early stopping fired, the run failed, or `finish()` was called."""
        patience = self.settings.early_stopping_patience
        return (self._finished or self.fail_reason is not None or self.epoch >= self.settings.epochs
                or bool(patience and self.stale >= patience))

    def step(self) -> EpochRecord | None:
        """Train one epoch and evaluate it on validation.

        Returns None when the epoch diverged; `fail_reason` then says how,
        and the run is over unless a `restore()` takes it back.
        """
        if self.done:
            raise RuntimeError("this run is over; restore a snapshot or start a new run")
        self.epoch += 1
        epoch_start = time.perf_counter()
        try:
            reason = self._train_epoch()
            if reason is None:
                val_loss, val_metric, val_extra = _evaluate(self.model, self.data.x_val, self.data.y_val,
                                                            self.eval_loss_fn, self.task, self.data.y_scale, self.amp,
                                                            self.metric)
        except (MemoryError, RuntimeError) as exc:
            if not is_out_of_memory(exc):
                raise
            reason = f"{out_of_memory_reason(exc)} (in epoch {self.epoch})"
        if reason is not None:
            self.fail_reason = reason
            return None
        assert self.first_loss is not None
        train_loss = self._epoch_loss
        if not math.isfinite(val_loss) or val_loss > EXPLODE_FACTOR * self.first_loss:
            self.fail_reason = f"diverged: validation loss became {val_loss:.3g} in epoch {self.epoch}"
            return None
        record = EpochRecord(self.epoch, train_loss, val_loss, val_metric, self.optimizer.param_groups[0]["lr"],
                             time.perf_counter() - epoch_start)
        self.history.append(record)
        if is_better(val_metric, self.best_metric, self.direction):
            self.best_metric, self.best_val_extra, self.best_epoch, self.stale = val_metric, val_extra, self.epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.stale += 1
        return record

    def _train_epoch(self) -> str | None:
        """One pass over the training split; the divergence reason, or None. Sets `_epoch_loss`."""
        # Everything the batch loop touches is a local: attribute lookups per batch add up on small models.
        model, optimizer, scaler, settings, loss_fn = self.model, self.optimizer, self.scaler, self.settings, self.loss_fn
        data, device, amp, augment, aug_gen = self.data, self.device, self.amp, self.augment, self.aug_gen
        classification = self.task == "classification"
        batch_size, steps_per_epoch, total_steps = self.batch_size, self.steps_per_epoch, self.total_steps
        step, first_loss, epoch = self.step_count, self.first_loss, self.epoch
        model.train()
        order = torch.randperm(self.n, generator=self.shuffle_gen).to(data.x_train.device)
        window = torch.zeros((), device=device)
        epoch_loss = torch.zeros((), device=device)
        try:
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
                    loss = loss_fn(out.float(), yb if classification else yb.unsqueeze(-1))
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
                        return (f"diverged: training loss became {mean} in epoch {epoch} "
                                f"(learning rate {settings.learning_rate:g} is likely too high)")
                    if mean > EXPLODE_FACTOR * first_loss:
                        return (f"diverged: training loss exploded to {mean:.3g} in epoch {epoch}, "
                                f"{mean / first_loss:.0f}x its starting value")
                    epoch_loss += window
                    window.zero_()
        finally:
            self.step_count, self.first_loss = step, first_loss
        self._epoch_loss = epoch_loss.item() / steps_per_epoch
        return None

    def finish(self) -> TrialResult:
        """The trial's result: the best validation epoch's weights, measured on test.

        The model keeps those weights afterwards; the run cannot step again.
        """
        self._finished = True
        seconds = time.perf_counter() - self.started
        if self.fail_reason is not None or self.best_state is None or self.best_metric is None:
            return TrialResult("failed", None, None, list(self.history), n_params=self.n_params, seconds=seconds,
                               fail_reason=self.fail_reason or "no epoch was trained")
        self.model.load_state_dict(self.best_state)
        # The best epoch's validation pass ran on exactly these weights, so its figures stand;
        # evaluating them again would only cost time.
        _, test_metric, test_extra = _evaluate(self.model, self.data.x_test, self.data.y_test, self.eval_loss_fn,
                                               self.task, self.data.y_scale, self.amp, self.metric)
        extra = ({f"val_{k}": v for k, v in self.best_val_extra.items()}
                 | {f"test_{k}": v for k, v in test_extra.items()})
        return TrialResult("complete", self.best_metric, test_metric, list(self.history), best_epoch=self.best_epoch,
                           seconds=time.perf_counter() - self.started, n_params=self.n_params, extra_metrics=extra)

    # --- changing knobs -------------------------------------------------------------------------------

    def refusals(self, changes: dict[str, Any]) -> dict[str, str]:
        """Why each of `changes` may not be made now (empty: all may)."""
        reasons: dict[str, str] = {}
        for knob in changes:
            if knob not in self.dynamic:
                known = knob in self.config or knob in self.supported or not self._config_given
                reasons[knob] = structural_reason(knob) if known else f"unknown knob {knob}"
            elif knob not in self.supported:
                reasons[knob] = f"{knob} is marked dynamic, but this run has no way to change it"
            elif knob == "label_smoothing" and self.task != "classification":
                reasons[knob] = "label_smoothing applies to classification only"
            elif knob == "dropout" and knob not in self.setters and not self._dropouts:
                reasons[knob] = "the model has no dropout layers"
        if self._finished:
            reasons = {knob: "the run is finished" for knob in changes}
        return reasons

    def apply(self, changes: dict[str, Any]) -> list[str]:
        """Set dynamic knobs for the epochs that follow; values must already fit the space.

        Returns notes on changes that have no effect (momentum under Adam).

        Raises:
            RefusedChange: Some knob is structural or unknown; nothing was changed.
        """
        refused = self.refusals(changes)
        if refused:
            raise RefusedChange(refused)
        notes: list[str] = []
        for knob, value in changes.items():
            if knob in self.setters:
                self.setters[knob](self, value)
            else:
                notes += self._set(knob, value)
            self.config[knob] = value
        return notes

    def set_augment(self, augment: Augment | None) -> None:
        """Replace the batch augmentation (for a target's augmentation setter)."""
        self.augment = augment

    def _set(self, knob: str, value: Any) -> list[str]:
        settings, groups = self.settings, self.optimizer.param_groups
        if knob == "learning_rate":
            settings.learning_rate = float(value)
            for group in groups:
                group["lr"] = settings.learning_rate * lr_factor(settings.lr_schedule, self.step_count,
                                                                 self.total_steps)
        elif knob == "weight_decay":
            settings.weight_decay = float(value)
            for group in groups:
                group["weight_decay"] = settings.weight_decay
        elif knob == "momentum":
            settings.momentum = float(value)
            if "momentum" not in groups[0]:
                return [f"momentum has no effect on {settings.optimizer}"]
            self._set_momentum(settings.momentum)
        elif knob == "label_smoothing":
            settings.label_smoothing = float(value)
            self.loss_fn.label_smoothing = settings.label_smoothing  # type: ignore[assignment]
        elif knob == "grad_clip":
            settings.grad_clip = float(value)
        elif knob == "dropout":
            for module in self._dropouts:
                module.p = float(value)
        return []

    def _set_momentum(self, momentum: float) -> None:
        for group in self.optimizer.param_groups:
            group["momentum"] = momentum
            if isinstance(self.optimizer, torch.optim.SGD):
                group["nesterov"] = momentum > 0  # as make_optimizer builds it
            if isinstance(self.optimizer, torch.optim.RMSprop) and momentum > 0:
                # RMSprop creates its momentum buffer only at the first step, and only when momentum > 0.
                for param in group["params"]:
                    state = self.optimizer.state.get(param)
                    if state and "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    # --- snapshots ------------------------------------------------------------------------------------

    @property
    def _generators(self) -> tuple[torch.Generator, ...]:
        return (self.shuffle_gen, self.aug_gen)

    def snapshot(self) -> RunSnapshot:
        """A deep copy of everything the next epoch depends on.

        Weights, optimiser state, loss scaler, schedule position, every RNG
        (torch, CUDA, numpy, Python, the trainer's own generators), the knob
        values and the bookkeeping (history, best epoch, patience). Tensors
        stay on the device when they fit in half its free memory.
        """
        model_state, optimizer_state = self.model.state_dict(), self.optimizer.state_dict()
        on_device = keep_on_device(self.device, tensor_bytes(model_state) + tensor_bytes(optimizer_state))
        return RunSnapshot(
            model=clone_tree(model_state, not on_device),
            optimizer=clone_tree(optimizer_state, not on_device),
            scaler=self.scaler.state_dict(),
            rng=RngState.capture(self._generators),
            settings=copy.copy(self.settings),
            config=dict(self.config),
            dropout=tuple(float(m.p) for m in self._dropouts),
            augment=self.augment,
            progress={name: getattr(self, name) for name in _PROGRESS},
            history=tuple(self.history),
            on_device=on_device,
        )

    def restore(self, snap: RunSnapshot) -> None:
        """Put the run back exactly as it was at `snap`; the snapshot stays usable."""
        self.model.load_state_dict(snap.model)
        # load_state_dict keeps tensors that are already on the right device: give it copies,
        # or the next steps would write into the snapshot.
        self.optimizer.load_state_dict(clone_tree(snap.optimizer, False))
        if snap.scaler:
            self.scaler.load_state_dict(snap.scaler)
        snap.rng.restore(self._generators)
        self.settings = copy.copy(snap.settings)
        if self.task == "classification":
            self.loss_fn.label_smoothing = self.settings.label_smoothing  # type: ignore[assignment]
        self.config = dict(snap.config)
        for module, p in zip(self._dropouts, snap.dropout, strict=True):
            module.p = p
        self.augment = snap.augment
        for name, value in snap.progress.items():
            setattr(self, name, value)
        self.history = list(snap.history)
        self._finished = False


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
    run = TrainingRun(model, data, settings, task=task, seed=seed, augment=augment, device=device)
    return run_to_end(run, reporter)


def _place(data: TensorSplits, device: torch.device) -> TensorSplits:
    """Put the data on the device when it fits in half the free memory."""
    if device.type != "cuda":
        return data
    free, _ = torch.cuda.mem_get_info(device)
    return data.to(device) if data.nbytes() < free // 2 else data
