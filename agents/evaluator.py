"""The Evaluator: judges the newest trial and writes the textual gradient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import render
from agents.base import Agent
from agents.diagnostics import Diagnostics, EpochDiagnostics, alarms, diagnose, diagnose_epoch
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord, dynamic_knobs, is_better, scored, val
from agents.schemas import EpochVerdict, Verdict, epoch_verdict_schema, verdict_schema


class Evaluator(Agent):
    """Compares the newest trial with the best before it; the numbers decide ``is_new_best``."""

    name = "evaluator"
    max_tokens = 260  # an analysis and the two gradient steps the grammar allows, at their schema caps

    def judge(
        self,
        space: Sequence[KnobSpec],
        newest: TrialRecord,
        best: TrialRecord | None,
        metric: MetricInfo,
        diagnostics: Diagnostics | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """The verdict on ``newest``.

        Args:
            space: The knob specs; gradient steps can only name these knobs.
            newest: The trial that just finished (complete or failed).
            best: The best trial *before* ``newest``, or None.
            metric: Name and direction of the validation metric.
            diagnostics: `diagnose(newest, metric)`, computed here when omitted.
            data: The data profile (`tuning_targets.Target.data_profile()`), if known.

        Returns:
            The model's analysis and gradient; ``is_new_best`` is arithmetic,
            set by code from the numbers, never asked of the model.

        Raises:
            AgentFailure: No valid verdict after one retry, or the server failed.
        """
        facts = diagnostics if diagnostics is not None else diagnose(newest, metric)
        earlier = best if best is not None and scored(best) and best.get("number") != newest.get("number") else None
        new_best = scored(newest) and is_better(
            newest.get("val_metric"), earlier.get("val_metric") if earlier else None, metric["direction"]
        )
        best_config = (earlier.get("config") or {}) if earlier else {}
        verdict = self._ask(
            verdict_schema(tuple(knob["name"] for knob in space)),
            {
                "task": render.task(metric),
                "data": render.data(data),
                "knobs": render.knob_names(space),
                "newest": f"{render.trial(newest, metric, best_config)}\n  changes tried: {render.changes(newest)}",
                "diagnostics": render.diagnostics(facts),
                "best": f"{render.best([earlier], metric)}" if earlier else "(none: this is the first completed trial)",
                "comparison": _comparison(newest, earlier, metric, new_best),
            },
        )
        return verdict.model_copy(update={"is_new_best": new_best})

    def judge_epoch(
        self,
        space: Sequence[KnobSpec],
        run: RunRecord,
        metric: MetricInfo,
        diagnostics: EpochDiagnostics | None = None,
    ) -> EpochVerdict:
        """Whether a run's curve is healthy after its latest epoch, and which dynamic knobs to move if not.

        Args:
            space: The knob specs; only the dynamic ones are shown and may be named.
            run: The run so far (see `agents.records`): config now, history, planned epochs, schedule.
            metric: Name and direction of the validation metric.
            diagnostics: `diagnose_epoch(run, metric)`, computed here when omitted.

        Returns:
            The model's verdict, with ``healthy`` overruled to False when code
            finds the run diverging or its training loss rising (``correction``
            then says so): a healthy verdict skips the Advisor, so it must not
            wave a failing run through.

        Raises:
            AgentFailure: No valid verdict after one retry, or the server failed.
        """
        facts = diagnostics if diagnostics is not None else diagnose_epoch(run, metric)
        knobs = dynamic_knobs(space)
        verdict = self._ask(
            epoch_verdict_schema(tuple(knob["name"] for knob in knobs)),
            render.epoch_context(knobs, run, metric, facts),
            prompt="evaluator_epoch",
        )
        raised = alarms(facts)
        if verdict.healthy and raised:
            note = f"healthy overruled to false by the code-computed flags: {', '.join(raised)}"
            verdict = verdict.model_copy(update={"healthy": False, "correction": note})
        return verdict


def _comparison(newest: TrialRecord, earlier: TrialRecord | None, metric: MetricInfo, new_best: bool) -> str:
    verdict = "a new best" if new_best else "not a new best"
    if not scored(newest):
        return f"the newest trial failed or has no score, so it is {verdict}."
    if earlier is None:
        return f"no earlier completed trial, so it is {verdict}."
    now, then = val(newest), val(earlier)
    return f"newest {render.value(now)} vs best {render.value(then)} ({now - then:+.3g}; {metric['direction']}): {verdict}."
