"""The Advisor: proposes the next configuration change, with reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import render
from agents.base import Agent
from agents.diagnostics import EpochDiagnostics, diagnose_epoch
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord, dynamic_knobs
from agents.schemas import (
    Choice,
    EpochProposal,
    EpochVerdict,
    Proposal,
    Verdict,
    choice_schema,
    epoch_proposal_schema,
    proposal_schema,
)

CHECKED = "Each change is tested: the next epoch is trained with and without it, and the better one is kept."
UNCHECKED = "Each change is applied as is for the rest of the run, so change only what the evidence supports."


class Advisor(Agent):
    """Reads the space, the trials, the latest gradient and the guidance; proposes changes."""

    name = "advisor"
    max_tokens = 300  # up to four changes and the expected effect, at their schema caps

    def propose(
        self,
        space: Sequence[KnobSpec],
        trials: Sequence[TrialRecord],
        metric: MetricInfo,
        gradient: Verdict | None = None,
        guidance: str | None = None,
        feedback: str | Sequence[str] = (),
        data: Mapping[str, Any] | None = None,
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
            data: The data profile (`tuning_targets.Target.data_profile()`), if known.

        Raises:
            AgentFailure: No valid proposal after one retry, or the server failed.
        """
        schema = proposal_schema(tuple(knob["name"] for knob in space))
        return self._ask(schema, between_trials(space, trials, metric, gradient, guidance, feedback, data))

    def choose(
        self,
        space: Sequence[KnobSpec],
        trials: Sequence[TrialRecord],
        metric: MetricInfo,
        candidates: Sequence[str],
        gradient: Verdict | None = None,
        guidance: str | None = None,
        feedback: str | Sequence[str] = (),
        data: Mapping[str, Any] | None = None,
    ) -> Choice:
        """The Advisor's pick among code's candidates, with at most two knobs adjusted and one sentence why.

        Args:
            candidates: One text per candidate, numbered from 0 in this order:
                its changes from the best config and the code-computed evidence.
            The rest as for `propose`.

        Raises:
            AgentFailure: No valid choice after one retry, or the server failed.
        """
        schema = choice_schema(tuple(knob["name"] for knob in space), len(candidates))
        values = between_trials(space, trials, metric, gradient, guidance, feedback, data)
        # Choosing needs less than proposing: code wrote the candidates, so knob names and ranges stand in
        # for the descriptions, the best config's non-default values for all of it (candidates are
        # changes from it), and fewer trials for the run (the evidence lines summarise the rest).
        values |= {"space": render.knob_names(space), "best": render.best(trials, metric, brief=True),
                   "trials": render.trials(trials, metric, best_n=2, last_n=2)}
        return self._ask(schema, {**values, "candidates": "\n".join(candidates)}, prompt="advisor_choose")

    def adjust(
        self,
        space: Sequence[KnobSpec],
        run: RunRecord,
        metric: MetricInfo,
        verdict: EpochVerdict | None = None,
        guidance: str | None = None,
        feedback: str | Sequence[str] = (),
        diagnostics: EpochDiagnostics | None = None,
        checked: bool = True,
    ) -> EpochProposal:
        """New values of dynamic knobs for a run's next epoch; an empty ``changes`` means carry on.

        Args:
            space: The knob specs; only the dynamic ones are shown and offered.
            run: The run so far (see `agents.records`): config now, history, planned epochs, schedule.
            metric: Name and direction of the validation metric.
            verdict: The Evaluator's reading of the curve after the latest epoch.
            guidance: The Optimizer's standing guidance, if any.
            feedback: Why earlier changes in this run were refused or repaired.
            diagnostics: `diagnose_epoch(run, metric)`, computed here when omitted.
            checked: Whether the change will be A/B tested (the prompt says which).

        Raises:
            AgentFailure: No valid reply after one retry, or the server failed.
        """
        facts = diagnostics if diagnostics is not None else diagnose_epoch(run, metric)
        knobs = dynamic_knobs(space)
        return self._ask(
            epoch_proposal_schema(tuple(knob["name"] for knob in knobs)),
            {
                **render.epoch_context(knobs, run, metric, facts),
                "verdict": render.gradient(verdict),
                "guidance": guidance or "(none)",
                "feedback": render.feedback(feedback),
                "check": CHECKED if checked else UNCHECKED,
            },
            prompt="advisor_epoch",
        )


def between_trials(
    space: Sequence[KnobSpec],
    trials: Sequence[TrialRecord],
    metric: MetricInfo,
    gradient: Verdict | None,
    guidance: str | None,
    feedback: str | Sequence[str],
    data: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The prompt values of a proposal between trials (the batch Advisor's too)."""
    return {
        "task": render.task(metric),
        "data": render.data(data),
        "space": render.space(space),
        "best": render.best(trials, metric),
        "trials": render.trials(trials, metric),
        "gradient": render.gradient(gradient),
        "guidance": guidance or "(none yet)",
        "feedback": render.feedback(feedback),
    }
