"""The Optimizer: rewrites the Advisor's standing guidance from what worked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import render
from agents.base import Agent
from agents.records import MetricInfo, TrialRecord
from agents.schemas import Guidance

EARLIER_VERSIONS = 2


class Optimizer(Agent):
    """Turns the session's record of proposals and outcomes into a few standing rules."""

    name = "optimizer"
    max_tokens = 170  # the guidance and one sentence why, at their schema caps

    def rewrite(self, guidance_history: Sequence[str], record: Sequence[TrialRecord], metric: MetricInfo,
                data: Mapping[str, Any] | None = None) -> Guidance:
        """New guidance for the Advisor.

        Args:
            guidance_history: Guidance versions so far, oldest first; the last is current.
            record: All trials, oldest first, with their ``changes`` and ``reasons``.
            metric: Name and direction of the validation metric.
            data: The data profile (`tuning_targets.Target.data_profile()`), if known.

        Raises:
            AgentFailure: No valid guidance after one retry, or the server failed.
        """
        current = guidance_history[-1] if guidance_history else "(none yet)"
        previous = guidance_history[-1 - EARLIER_VERSIONS : -1]
        return self._ask(
            Guidance,
            {
                "task": render.task(metric),
                "data": render.data(data),
                "guidance": current,
                "previous": "\n".join(f"- {g}" for g in previous) or "(none)",
                "record": render.outcomes(record, metric),
            },
        )
