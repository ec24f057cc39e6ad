"""What every trial's training looks like from outside: a run stepped to its end, reporting a curve.

A step is the unit in which a model family trains and is watched: an epoch
of a torch model (`trainer.TrainingRun`), a stage of boosting iterations of
a gradient-boosted ensemble, or one whole fit of a random forest or a
linear model (`estimators.EstimatorRun`). Every caller (the baselines'
worker, the LGT graph, in-run adaptation, the pruners and the epoch budget)
speaks only this contract, so a family with no epochs is a run of fewer,
different steps, never a special case:

- `step()` trains one step and returns its record (None when it failed);
- `done` says whether the run is over; `finish()` gives the result, measured
  on the best step by validation;
- `apply()` changes the knobs this run may change between steps (`dynamic`),
  refusing the rest with a reason; `snapshot()` / `restore()` let one step
  be trained twice from the same state (the A/B check of `--adapt epoch`).

Nothing here needs torch.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, ClassVar

from tuning_targets.records import EpochRecord, Reporter, TrialResult


def structural_reason(knob: str) -> str:
    """The one wording of why a knob may not move mid-run (agents and change logs show it)."""
    return f"structural knob {knob} cannot change inside a run"


class RefusedChange(ValueError):
    """Changes that may not be made inside a run; `reasons` maps each knob to why.

    `apply` raises it before touching anything, so a refused batch leaves
    the run as it was.
    """

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__("; ".join(reasons.values()))
        self.reasons = reasons


class TrialRefused(Exception):
    """A config this machine cannot train, known before training starts.

    Raised by a target's `load_splits` (or `build_model`) when, say, its
    feature expansion would not fit in memory, or by a model family's own
    memory estimate (a forest of many deep trees on many rows). `Target.start_run` turns it
    into a run that is over at once and finishes as `failed` with this
    message as its reason, like a diverged run: the tuner records the trial
    and goes on to its next config instead of the whole run ending.
    """


def out_of_memory_reason(exc: BaseException) -> str:
    """A failed trial's reason for an allocation that failed: what could not be allocated, in one line."""
    text = str(exc).strip()
    return f"out of memory: {text.splitlines()[0] if text else type(exc).__name__}"


@dataclass(frozen=True)
class StepPlan:
    """The part of a torch run's `settings` that callers written for it read (`run.settings.epochs`).

    Runs that are not torch runs offer it too, so such callers keep working
    on every family; new code reads `ModelRun.planned_epochs`.
    """

    epochs: int
    early_stopping_patience: int = 0


class ModelRun(ABC):
    """One trial's training, a step at a time.

    Attributes every run keeps (callers read them):
        started: `time.perf_counter()` when the trial's clock started.
        config: The trial's config, kept current by `apply()`.
        dynamic: Knobs that may change between steps of this run.
        history: One record per step kept.
        epoch: Steps trained so far (named for the torch runs' epochs; the
            records count steps the same way).
        first_loss: The loss before training (or on the first batch), the
            yardstick of divergence checks; None until known.
        fail_reason: Why the run failed, or None.
    """

    unit: ClassVar[str] = "epoch"  # what one step is, in words ("epoch", "boosting stage", "fit")

    started: float
    config: dict[str, Any]
    dynamic: frozenset[str]
    history: list[EpochRecord]
    epoch: int
    first_loss: float | None
    fail_reason: str | None

    @property
    @abstractmethod
    def planned_epochs(self) -> int:
        """Steps this run trains unless it stops early: the config's epochs, boosting stages, or 1."""

    @property
    @abstractmethod
    def done(self) -> bool: ...

    @abstractmethod
    def step(self) -> EpochRecord | None:
        """Train one step and evaluate it on validation; None when it failed (`fail_reason` says how)."""

    @abstractmethod
    def finish(self) -> TrialResult:
        """The trial's result, measured on the best step by validation; the run cannot step again."""

    @abstractmethod
    def snapshot(self) -> Any:
        """A copy of everything the next step depends on."""

    @abstractmethod
    def restore(self, snap: Any) -> None:
        """Put the run back exactly as it was at `snap`; the snapshot stays usable."""

    @abstractmethod
    def refusals(self, changes: dict[str, Any]) -> dict[str, str]:
        """Why each of `changes` may not be made now (empty: all may)."""

    @abstractmethod
    def apply(self, changes: dict[str, Any]) -> list[str]:
        """Set dynamic knobs for the steps that follow; raises RefusedChange (changing nothing) for any other."""

    def dynamic_values(self) -> dict[str, Any]:
        """The current value of every knob that may change inside this run."""
        return {k: v for k, v in self.config.items() if k in self.dynamic}


class FailedRun(ModelRun):
    """A run whose data or model could not be built (refused, or out of memory): over before its first step.

    It finishes as `failed` with `reason`, so every caller records it as it
    records a diverged trial, through the code path it already has.
    """

    def __init__(self, reason: str, *, config: dict[str, Any], planned: int, dynamic: Collection[str] = (),
                 started: float | None = None) -> None:
        self.started = time.perf_counter() if started is None else started
        self.config, self.dynamic, self._planned = dict(config), frozenset(dynamic), planned
        self.history, self.epoch, self.first_loss, self.fail_reason = [], 0, None, reason

    @property
    def planned_epochs(self) -> int:
        return self._planned

    @property
    def settings(self) -> StepPlan:
        return StepPlan(self._planned)

    @property
    def done(self) -> bool:
        return True

    def step(self) -> EpochRecord | None:
        return None  # a caller that steps before it checks `done` sees a failed step, as for a divergence

    def finish(self) -> TrialResult:
        return TrialResult("failed", None, None, [], fail_reason=self.fail_reason,
                           seconds=time.perf_counter() - self.started)

    def snapshot(self) -> Any:
        return None

    def restore(self, snap: Any) -> None:
        pass

    def refusals(self, changes: dict[str, Any]) -> dict[str, str]:
        return {knob: f"the run never started: {self.fail_reason}" for knob in changes}

    def apply(self, changes: dict[str, Any]) -> list[str]:
        if changes:
            raise RefusedChange(self.refusals(changes))
        return []


def run_to_end(run: ModelRun, reporter: Reporter | None = None, max_steps: float = math.inf,
               stop: Callable[[EpochRecord], bool] | None = None) -> TrialResult:
    """Step `run` through its planned steps (or until early stopping, failure or `max_steps`) and finish it.

    `max_steps` is what is left of a run's epoch budget: every method stops
    its last trial there, so equal budgets train equal epochs. `stop` sees
    each step's record and may end the run there (a pruner's verdict).
    """
    reporter = reporter or Reporter()
    reporter.on_start(int(min(run.planned_epochs, max_steps)))
    while not run.done and len(run.history) < max_steps:
        record = run.step()
        if record is None:
            break
        reporter.on_epoch(record)
        if stop is not None and stop(record):
            break
    result = run.finish()
    reporter.on_end(result)
    return result
