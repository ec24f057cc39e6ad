"""The Advisor: proposes the next configuration change, with reasons."""

from __future__ import annotations

from collections.abc import Sequence

from agents import render
from agents.base import Agent
from agents.records import KnobSpec, MetricInfo, TrialRecord
from agents.schemas import Proposal, Verdict, proposal_schema


class Advisor(Agent):
    """Reads the space, the trials, the latest gradient and the guidance; proposes changes."""

    name = "advisor"

    def propose(
        self,
        space: Sequence[KnobSpec],
        trials: Sequence[TrialRecord],
        metric: MetricInfo,
        gradient: Verdict | None = None,
        guidance: str | None = None,
        feedback: str | Sequence[str] = (),
    ) -> Proposal:
        """The next change, to apply to the best configuration so far.

        Args:
            space: The knob specs; ``knob`` in the reply can only name one of them.
            trials: All trials so far, oldest first.
            metric: Name and direction of the validation metric.
            gradient: The Evaluator's latest verdict, if any.
            guidance: The Optimizer's current guidance, if any.
            feedback: Why the previous proposal was not run as is (unknown
                knob dropped, value out of range, already run, a user's
                rejection note); shown to the model so it does not repeat it.

        Raises:
            AgentFailure: No valid proposal after one retry, or the server failed.
        """
        schema = proposal_schema(tuple(knob["name"] for knob in space))
        return self._ask(
            schema,
            {
                "task": render.task(metric),
                "space": render.space(space),
                "best": render.best(trials, metric),
                "trials": render.trials(trials, metric),
                "gradient": render.gradient(gradient),
                "guidance": guidance or "(none yet)",
                "feedback": render.feedback(feedback),
            },
        )
