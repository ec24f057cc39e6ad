"""The LGT graph's state and the dependencies injected into it.

State is plain data (JSON-friendly) so the checkpointer can store it and a
run can resume on another process. Everything with behaviour (the target,
the agents, the study recorder, progress output) arrives through `Deps`,
the graph's runtime context, never as a global. Nodes only record: every
file a person reads is rendered by the app shell from what the recorder
stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from agents.records import TrialRecord
from graphs.roles import Advisor, BatchAdvisor, CandidateSource, Evaluator, GuidanceWriter
from lgt.options import OPTIONS
from lgt.vocabulary import Proposer
from tuning_targets import Reporter, Target, TrialResult


class TrialRecorder(Protocol):
    """Writes what a run did into its Optuna study: trials, verdicts, guidance."""

    def find(self, round_number: int) -> int | None:
        """The study's trial number for this round, if it was already recorded."""

    def record(self, round_number: int, record: TrialRecord, result: Mapping[str, Any],
               extra: Mapping[str, Any]) -> int:
        """Add one finished trial (`result`: `TrialResult.to_dict()`); returns its trial number."""
        ...

    def note_verdict(self, round_number: int, trial_number: int, verdict: Mapping[str, Any]) -> None:
        """The verdict on a trial recorded by someone else (a worker), judged after it finished."""

    def note_guidance(self, version: Mapping[str, Any]) -> None:
        """A new version of the Optimizer's guidance (version, after_round, guidance, reason)."""

    def finish(self) -> None:
        """The run spent its budget."""


class Dispatcher(Protocol):
    """Hands a round's configs to workers through the study, and collects their results."""

    def submit(self, round_number: int, candidates: list[dict[str, Any]], first_attrs: dict[str, Any]) -> None:
        """Queue the candidates as trials of this round, unless they are queued already (a resume)."""

    def collect(self, round_number: int, size: int, progress: Progress) -> list[tuple[int, int, dict[str, Any]]]:
        """Wait until every slot of the round is done, or the run's budget is spent and no slot still runs.

        Returns (slot, trial number, result dict) per slot that ran, in slot
        order; a slot no worker took before the budget ran out is left out
        (workers stop at the budget, so it would never run).
        """
        ...


class Progress(Protocol):
    """What the graph reports while it runs, as data; `lgt.observer.RunObserver` fits it."""

    def on_message(self, text: str) -> None: ...

    def on_trial_start(self, number: int, ordinal: int, budget: int, config: dict[str, Any]) -> None: ...

    def on_trial_end(self, number: int, result: TrialResult) -> None: ...

    def epoch_reporter(self) -> Reporter: ...

    def on_proposal(self, round_number: int, budget: int, proposal: Mapping[str, Any]) -> None: ...

    def on_verdict(self, record: Mapping[str, Any]) -> None: ...

    def on_guidance(self, version: Mapping[str, Any]) -> None: ...

    def on_schedule_entry(self, entry: Mapping[str, Any]) -> None: ...


@dataclass
class Deps:
    """What the nodes need and the state must not hold.

    The run's options arrive as `lgt tune` (or the sampler) resolved them;
    their defaults are the options' own (`lgt.options`), for tests and callers that give fewer.
    """

    target: Target
    evaluator: Evaluator
    optimizer: GuidanceWriter
    recorder: TrialRecorder
    progress: Progress
    advisor: Advisor | None = None  # proposes (llm), chooses (hybrid), and adjusts inside a run
    batch_advisor: BatchAdvisor | None = None  # parallel rounds' (`parallel` > 1)
    seed: int = 0
    optimize_every: int = OPTIONS["optimize_every"].default
    llm_usage: Callable[[], dict[str, float]] = dict
    parallel: int = OPTIONS["parallel"].default  # proposals per round; above 1, `dispatcher` hands them to workers
    adapt: str = OPTIONS["adapt"].default  # "epoch": the agents also adjust dynamic knobs between the epochs of each trial
    adapt_check: bool = OPTIONS["adapt_check"].default  # A/B-check every in-run change
    epoch_budget: int | None = None  # stop once this many epochs were trained (A/B branches count)
    dispatcher: Dispatcher | None = None
    candidates: CandidateSource | None = None  # TPE's candidates; also every fallback's config
    proposer: Proposer = OPTIONS["proposer"].default  # how each round's config is chosen (`lgt.vocabulary.PROPOSERS`)
    n_candidates: int = OPTIONS["candidates"].default
    stop_after_fallbacks: int | None = None  # rounds in a row the Advisor may fall back before the run stops
    session_start: int = 0  # trials recorded before this process took the run over (a resume tries again)
    data_profile: dict[str, Any] = field(default_factory=dict)  # `Target.data_profile()`, told to every agent
    words: str = "free"  # `lgt.vocabulary.Words`: "menu", the agents pick from closed lists and code writes every sentence
    external: bool = False  # each round's trial runs outside the graph (the Optuna sampler): `train` awaits it

    @property
    def metric(self) -> dict[str, str]:
        """The validation metric as the agents read it."""
        return {"name": self.target.metric, "direction": self.target.direction}


class TuningState(TypedDict, total=False):
    run_id: str
    budget: int
    round: int
    trials: list[TrialRecord]
    best: int | None  # index into `trials`
    pending: dict[str, Any] | None  # the next round's candidate (`graphs.proposals.Candidate.to_dict()`)
    pending_batch: list[dict[str, Any]] | None  # parallel rounds: the round's candidates, slot order
    batch_results: list[dict[str, Any]] | None
    last_result: dict[str, Any] | None
    last_adaptation: dict[str, Any] | None  # --adapt epoch: the trial's schedule and epochs trained
    epochs_used: int
    last_verdict: dict[str, Any] | None
    guidance: str
    guidance_history: list[dict[str, Any]]
    feedback: str | None
    llm_usage_recorded: dict[str, float]
    done: bool
    pick_prior: dict[str, Any]  # menu mode: the Advisor's letter probabilities by position so far (`agents.scoring`)
    others: list[TrialRecord]  # external trials: those that finished outside the rounds, for the next evaluate
