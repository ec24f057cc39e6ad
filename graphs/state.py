"""The LGT graph's state and the dependencies injected into it.

State is plain data (JSON-friendly) so the checkpointer can store it and a
run can resume on another process. Everything with behaviour (the target,
the agents, the study recorder, progress output) arrives through `Deps`,
the graph's runtime context, never as a global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, TypedDict

from tuning_targets import Reporter, Target, TrialResult


class TrialRecorder(Protocol):
    """Writes finished LGT trials into the run's Optuna study."""

    def find(self, round_number: int) -> int | None:
        """The study's trial number for this round, if it was already recorded."""

    def record(self, round_number: int, config: dict[str, Any], result: dict[str, Any],
               attrs: dict[str, Any]) -> int: ...


class Dispatcher(Protocol):
    """Hands a round's configs to workers through the study, and collects their results."""

    def submit(self, round_number: int, candidates: list[dict[str, Any]], first_attrs: dict[str, Any]) -> None:
        """Queue the candidates as trials of this round, unless they are queued already (a resume)."""

    def collect(self, round_number: int, size: int, progress: Progress) -> list[tuple[int, dict[str, Any]]]:
        """Wait until every slot of the round is done; (trial number, result dict) per slot."""
        ...

    def note_verdict(self, round_number: int, verdict: dict[str, Any]) -> None: ...


class Progress(Protocol):
    """What the graph reports while it runs; `lgt.observer.RunObserver` fits it."""

    def on_message(self, text: str) -> None: ...

    def on_trial_start(self, number: int, ordinal: int, budget: int, config: dict[str, Any]) -> None: ...

    def on_trial_end(self, number: int, result: TrialResult) -> None: ...

    def epoch_reporter(self) -> Reporter: ...




@dataclass
class Deps:
    """What the nodes need and the state must not hold."""

    target: Target
    advisor: Any
    evaluator: Any
    optimizer: Any
    recorder: TrialRecorder
    run_dir: Path
    progress: Progress
    seed: int = 0
    optimize_every: int = 3
    llm_usage: Callable[[], dict[str, float]] = lambda: {}
    parallel: int = 1  # proposals per round; above 1, `dispatcher` hands them to workers
    adapt: str = "trial"  # "epoch": the agents also adjust dynamic knobs between the epochs of each trial
    adapt_check: bool = True  # A/B-check every in-run change
    epoch_budget: int | None = None  # stop once this many epochs were trained (A/B branches count)
    dispatcher: Dispatcher | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class TuningState(TypedDict, total=False):
    run_id: str
    budget: int
    round: int
    trials: list[dict[str, Any]]
    best: int | None
    pending: dict[str, Any] | None
    pending_batch: list[dict[str, Any]] | None  # parallel rounds: the round's candidates, slot order
    batch_results: list[dict[str, Any]] | None
    last_result: dict[str, Any] | None
    last_adaptation: dict[str, Any] | None  # --adapt epoch: the trial's schedule and epochs trained
    epochs_used: int
    epoch_budget: int | None  # copied from Deps for the change log
    adapt: str
    last_verdict: dict[str, Any] | None
    guidance: str
    guidance_history: list[dict[str, Any]]
    feedback: str | None
    llm_usage_recorded: dict[str, float]
    done: bool
