"""What the graph needs of each agent, as Protocols.

`agents.Advisor`, `agents.BatchAdvisor`, `agents.Evaluator` and
`agents.Optimizer` fit these; tests may hand in anything else that does.
Typing `Deps` by them (not `Any`) is what keeps a method the graph calls
from going missing unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agents import EpochProposal, EpochVerdict, Guidance, Proposal, Verdict
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord


class TrialAdvisor(Protocol):
    """Proposes the next change between trials."""

    def propose(self, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
                gradient: Verdict | None = None, guidance: str | None = None,
                feedback: str | Sequence[str] = (), data: Mapping[str, Any] | None = None) -> Proposal: ...


class EpochAdvisor(Protocol):
    """Changes dynamic knobs between the epochs of one run."""

    def adjust(self, space: Sequence[KnobSpec], run: RunRecord, metric: MetricInfo,
               verdict: EpochVerdict | None = None, guidance: str | None = None,
               feedback: str | Sequence[str] = (), diagnostics: Any = None, checked: bool = True) -> EpochProposal: ...


class Advisor(TrialAdvisor, EpochAdvisor, Protocol):
    """The serial loop's Advisor: between trials and, with `--adapt epoch`, inside them."""


class BatchAdvisor(Protocol):
    """Proposes several different changes at once, for a parallel round."""

    def propose_batch(self, size: int, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
                      gradient: Verdict | None = None, guidance: str | None = None,
                      feedback: str | Sequence[str] = (), data: Mapping[str, Any] | None = None) -> list[Proposal]: ...


class TrialEvaluator(Protocol):
    """Judges a finished trial against the best before it."""

    def judge(self, space: Sequence[KnobSpec], newest: TrialRecord, best: TrialRecord | None, metric: MetricInfo,
              diagnostics: Any = None, data: Mapping[str, Any] | None = None) -> Verdict: ...


class EpochEvaluator(Protocol):
    """Reads a run's curve after an epoch."""

    def judge_epoch(self, space: Sequence[Mapping[str, Any]], run: Mapping[str, Any], metric: Mapping[str, str],
                    diagnostics: Any = None) -> EpochVerdict: ...


class Evaluator(TrialEvaluator, EpochEvaluator, Protocol):
    """The Evaluator between trials and, with `--adapt epoch`, inside them."""


class GuidanceWriter(Protocol):
    """The Optimizer: rewrites the Advisor's standing guidance."""

    def rewrite(self, guidance_history: Sequence[str], record: Sequence[TrialRecord], metric: MetricInfo,
                data: Mapping[str, Any] | None = None) -> Guidance: ...
