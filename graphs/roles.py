"""What the graph needs of each agent, as Protocols.

`agents.Advisor`, `agents.BatchAdvisor`, `agents.Evaluator` and
`agents.Optimizer` fit these; tests may hand in anything else that does.
Typing `Deps` by them (not `Any`) is what keeps a method the graph calls
from going missing unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agents import Choice, EpochProposal, EpochVerdict, Guidance, Proposal, Verdict
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord


class TrialAdvisor(Protocol):
    """Proposes the next change between trials."""

    def propose(self, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
                gradient: Verdict | None = None, guidance: str | None = None,
                feedback: str | Sequence[str] = (), data: Mapping[str, Any] | None = None) -> Proposal: ...


class CandidateChooser(Protocol):
    """Picks one of code's candidates (the hybrid proposer)."""

    def choose(self, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
               candidates: Sequence[str], gradient: Verdict | None = None, guidance: str | None = None,
               feedback: str | Sequence[str] = (), data: Mapping[str, Any] | None = None) -> Choice: ...


class CandidatePicker(Protocol):
    """Menu mode: the candidate read from the model's probabilities, and the problem it acts on."""

    def pick(self, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
             candidates: Sequence[str], *, order: Sequence[int], position_prior: Sequence[float] | None = None,
             causes: Sequence[str] = (), gradient: Verdict | None = None, guidance: str | None = None,
             data: Mapping[str, Any] | None = None) -> Choice: ...


class EpochAdvisor(Protocol):
    """Changes dynamic knobs between the epochs of one run."""

    def adjust(self, space: Sequence[KnobSpec], run: RunRecord, metric: MetricInfo,
               verdict: EpochVerdict | None = None, guidance: str | None = None,
               feedback: str | Sequence[str] = (), diagnostics: Any = None, checked: bool = True) -> EpochProposal: ...


class Advisor(TrialAdvisor, CandidateChooser, CandidatePicker, EpochAdvisor, Protocol):
    """The Advisor: free proposals, a choice among candidates, and (with `--adapt epoch`) in-run changes."""


class BatchAdvisor(Protocol):
    """Proposes several different changes at once, for a parallel round."""

    def propose_batch(self, size: int, space: Sequence[KnobSpec], trials: Sequence[TrialRecord], metric: MetricInfo,
                      gradient: Verdict | None = None, guidance: str | None = None,
                      feedback: str | Sequence[str] = (), data: Mapping[str, Any] | None = None) -> list[Proposal]: ...


class TrialEvaluator(Protocol):
    """Judges a finished trial against the best before it."""

    def judge(self, space: Sequence[KnobSpec], newest: TrialRecord, best: TrialRecord | None, metric: MetricInfo,
              diagnostics: Any = None, data: Mapping[str, Any] | None = None, *, order_seed: int = 0,
              priors: Mapping[str, Any] | None = None) -> Verdict: ...


class EpochEvaluator(Protocol):
    """Reads a run's curve after an epoch."""

    def judge_epoch(self, space: Sequence[Mapping[str, Any]], run: Mapping[str, Any], metric: Mapping[str, str],
                    diagnostics: Any = None) -> EpochVerdict: ...


class Evaluator(TrialEvaluator, EpochEvaluator, Protocol):
    """The Evaluator between trials and, with `--adapt epoch`, inside them."""


class GuidanceWriter(Protocol):
    """The Optimizer: rewrites the Advisor's standing guidance."""

    def rewrite(self, guidance_history: Sequence[str], record: Sequence[TrialRecord], metric: MetricInfo,
                data: Mapping[str, Any] | None = None, space: Sequence[KnobSpec] = (), *, order_seed: int = 0,
                priors: Mapping[str, Any] | None = None) -> Guidance: ...


class CandidateSource(Protocol):
    """Code that proposes configs (`lgt.candidates.TPECandidates`): the LLM only chooses among them.

    Each call is given every trial of the run so far, as what actually ran.
    """

    def next(self, trials: Sequence[TrialRecord], n: int = 1) -> list[dict[str, Any]]:
        """The optimiser's own next `n` configs; the first is what its baseline would try next."""
        ...

    def region(self, trials: Sequence[TrialRecord], n: int, seed: int) -> list[dict[str, Any]]:
        """Up to `n` more configs from where the optimiser expects the best results."""
        ...

    def scores(self, trials: Sequence[TrialRecord], configs: Sequence[Mapping[str, Any]]) -> list[float]:
        """The optimiser's rating of each config (higher is better)."""
        ...
