"""The Advisor for parallel rounds: K different proposals at once.

Workers train the K configs side by side, so a batch should spread its bets:
the prompt asks for different hypotheses, and the graph refuses a proposal
that repeats a config already run or another one in the same batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pydantic import Field, create_model

from agents.advisor import best_problems, between_trials, picked_changes
from agents.base import Agent
from agents.records import KnobSpec, MetricInfo, TrialRecord
from agents.schemas import Proposal, ProposalBatch, Verdict, menu_batch_schema, proposal_schema


@lru_cache(maxsize=32)
def proposal_batch_schema(knobs: tuple[str, ...], size: int) -> type[ProposalBatch]:
    """A `ProposalBatch` of one to ``size`` proposals whose knobs are enumerated (see `proposal_schema`)."""
    if size < 1:
        raise ValueError("a batch holds at least one proposal")
    proposals: Any = list[proposal_schema(knobs)]  # type: ignore[misc]  # a class built at run time
    return create_model("ProposalBatch", __base__=ProposalBatch,
                        proposals=(proposals, Field(min_length=1, max_length=size)))


class BatchAdvisor(Agent):
    """Proposes ``size`` different changes to the best configuration so far.

    It shares the serial Advisor's prompt values (`agents.advisor.between_trials`)
    and the call path of every agent, not its methods: a parallel round has no
    single-proposal or in-run role.
    """

    name = "advisor_batch"
    max_tokens = 1024  # several proposals

    def propose_batch(
        self,
        size: int,
        space: Sequence[KnobSpec],
        trials: Sequence[TrialRecord],
        metric: MetricInfo,
        gradient: Verdict | None = None,
        guidance: str | None = None,
        feedback: str | Sequence[str] = (),
        data: Mapping[str, Any] | None = None,
    ) -> list[Proposal]:
        """Up to ``size`` proposals (a model may return fewer; the graph fills the rest).

        Raises:
            AgentFailure: No valid batch after one retry, or the server failed.
        """
        values = between_trials(space, trials, metric, gradient, guidance, feedback, data)
        if self.menu:
            causes = best_problems(trials, metric)
            reply = self._ask(menu_batch_schema(tuple(knob["name"] for knob in space), causes, size),
                              {"size": str(size), **values, "problems": ", ".join(causes) or "none flagged"},
                              prompt="advisor_batch_menu")
            return [Proposal(changes=picked_changes(p["changes"]), expected_effect="")
                    for p in reply.model_dump()["proposals"]][:size]
        schema = proposal_batch_schema(tuple(knob["name"] for knob in space), size)
        batch = self._ask(schema, {"size": str(size), **values})
        return list(batch.proposals)[:size]
