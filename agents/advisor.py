"""The Advisor: proposes the next configuration change, with reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import render, scoring
from agents.base import Agent, hidden, lettered
from agents.diagnostics import EpochDiagnostics, diagnose, diagnose_epoch, epoch_flags, flags
from agents.prompt import load_prompt
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord, best_trial, dynamic_knobs
from agents.schemas import (
    Change,
    Choice,
    EpochProposal,
    EpochVerdict,
    Proposal,
    Verdict,
    choice_schema,
    epoch_proposal_schema,
    menu_proposal_schema,
    proposal_schema,
)

PICK_ANSWER = '{"pick": "'  # the answer position: the next token is the candidate's letter
CAUSE_ANSWER = '{"acts on": "'  # asked on the same prompt: which of the best trial's problems the pick acts on
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
        values = between_trials(space, trials, metric, gradient, guidance, feedback, data)
        if self.menu:
            causes = best_problems(trials, metric)
            reply = self._ask(menu_proposal_schema(tuple(knob["name"] for knob in space), causes),
                              values | {"problems": ", ".join(causes) or "none flagged"}, prompt="advisor_menu")
            return Proposal(changes=picked_changes(reply.model_dump()["changes"]), expected_effect="")
        schema = proposal_schema(tuple(knob["name"] for knob in space))
        return self._ask(schema, values)

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

    def pick(
        self,
        space: Sequence[KnobSpec],
        trials: Sequence[TrialRecord],
        metric: MetricInfo,
        candidates: Sequence[str],
        *,
        order: Sequence[int],
        position_prior: Sequence[float] | None = None,
        causes: Sequence[str] = (),
        gradient: Verdict | None = None,
        guidance: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Choice:
        """Menu mode: the candidate the model prefers, read from its probabilities, and the problem it acts on.

        The candidates are shown in `order` (position -> candidate index)
        under the letters A, B, ...; the model's probability of each letter
        at the answer position is divided by `position_prior` (the run's
        estimate of how much the model favours each position whatever sits
        there, `agents.scoring`) and the candidate with the highest ratio is
        the pick. With no prior yet, one pass with the candidates hidden
        seeds it, returned in ``scores["seed_prior"]`` for the run to keep.
        When `causes` (the best trial's problems, `agents.diagnoses`) holds
        more than one, the model's probabilities over them, asked in the
        same request, say which one the pick acts on; with one, that one.

        Args:
            candidates: One line per candidate, in candidate order (index 0 is TPE's own pick).
            order: The display order, a permutation of the candidate indices.
            position_prior: Probabilities of the letters by position, or None in a run's first pick.
            causes: Diagnoses of the best trial the pick may act on.
            The rest as for `choose`.

        Returns:
            A `Choice` with no text: ``pick``, ``cause``, and ``scores`` (``raw`` letter
            probabilities by position, ``prior``, ``preference`` by candidate, ``shown``,
            ``mode``: "scored", or "generated" from an endpoint that cannot score).

        Raises:
            AgentFailure: the server failed or did not answer.
        """
        values = {"task": render.task(metric), "data": render.data(data), "space": render.knob_names(space),
                  "best": render.brief(best_trial(trials, metric), metric), "gradient": render.picks(gradient),
                  "guidance": guidance or "(none yet)"}
        template = load_prompt("advisor_pick")
        messages = template.render(**values, candidates=lettered(candidates, order))
        asked = [(CAUSE_ANSWER, list(causes))] if len(causes) > 1 else []
        read, rated = self._read_pick(messages, lambda: template.render(**values, candidates=hidden(len(candidates))),
                                      order, position_prior, PICK_ANSWER, also=asked)
        chosen = read.chosen[0]
        cause = scoring.top(causes, rated[0], causes[0]) if asked else (causes[0] if causes else None)
        return Choice(pick=chosen, reason="", expected_effect="", cause=cause, scores=read.record("advisor"))

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
        values = {
            **render.epoch_context(knobs, run, metric, facts),
            "verdict": render.gradient(verdict),
            "guidance": guidance or "(none)",
            "feedback": render.feedback(feedback),
            "check": CHECKED if checked else UNCHECKED,
        }
        if self.menu:
            causes = tuple(epoch_flags(facts))
            reply = self._ask(menu_proposal_schema(tuple(knob["name"] for knob in knobs), causes, epoch=True),
                              values | {"problems": ", ".join(causes) or "none"}, prompt="advisor_epoch_menu")
            return EpochProposal(changes=picked_changes(reply.model_dump()["changes"]), expected_effect="")
        return self._ask(epoch_proposal_schema(tuple(knob["name"] for knob in knobs)), values, prompt="advisor_epoch")


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



def best_problems(trials: Sequence[TrialRecord], metric: MetricInfo) -> tuple[str, ...]:
    """What code found wrong with the best trial's curves: the causes a menu-mode change may give."""
    top = best_trial(trials, metric)
    return tuple(d for d in flags(diagnose(top, metric)) if d != "failed") if top else ()


def picked_changes(changes: Sequence[Mapping[str, Any]]) -> list[Change]:
    """Menu-mode changes as `Change`s: no reason (code writes it from the cause)."""
    return [Change(knob=str(c["knob"]), value=c["value"], reason="", cause=c.get("cause")) for c in changes]
