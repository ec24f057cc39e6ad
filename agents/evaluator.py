"""The Evaluator: judges the newest trial and writes the textual gradient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import diagnoses, render, scoring
from agents.base import Agent, hidden, lettered
from agents.diagnostics import (
    Diagnostics,
    EpochDiagnostics,
    alarms,
    diagnose,
    diagnose_epoch,
    epoch_flags,
    summarize_curve,
)
from agents.formatting import value
from agents.menus import remedy_menu, step_line
from agents.prompt import load_prompt
from agents.records import KnobSpec, MetricInfo, RunRecord, TrialRecord, dynamic_knobs, scored, val
from agents.schemas import (
    EpochVerdict,
    GradientStep,
    Verdict,
    directions,
    epoch_verdict_schema,
    menu_epoch_verdict_schema,
    verdict_schema,
)
from lgt.direction import is_better


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
        *,
        order_seed: int = 0,
        priors: Mapping[str, Any] | None = None,
    ) -> Verdict:
        """The verdict on ``newest``.

        Args:
            space: The knob specs; gradient steps can only name these knobs.
            newest: The trial that just finished (complete or failed).
            best: The best trial *before* ``newest``, or None.
            metric: Name and direction of the validation metric.
            diagnostics: `diagnose(newest, metric)`, computed here when omitted.
            data: The data profile (`tuning_targets.Target.data_profile()`), if known.
            order_seed: Menu mode: shuffles the order the remedy menu is shown in (vary it per round).
            priors: Menu mode: the run's record of the model's position bias (`agents.scoring.fold`).

        Returns:
            The model's analysis and gradient (menu mode: picks only, with ``scores``); ``is_new_best`` is arithmetic,
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
        values = {
            "task": render.task(metric),
            "data": render.data(data),
            "knobs": render.knob_names(space),
            "newest": f"{render.trial(newest, metric, best_config)}\n  changes tried: {render.changes(newest)}",
            "diagnostics": render.diagnostics(facts),
            "best": f"{render.best([earlier], metric)}" if earlier else "(none: this is the first completed trial)",
            "comparison": _comparison(newest, earlier, metric, new_best),
        }
        if self.menu:  # what a pick needs, short: the prompt is read every round
            values |= {"newest": f"#{newest.get('number')} {render.score(newest, metric)}; changed "
                                 f"{render.changed(newest, best_config)}\n  curves: "
                                 f"{summarize_curve(list(newest.get('history') or []), metric)}",
                       "best": render.brief(earlier, metric)}
            return self._picked_verdict(space, values, facts, newest=newest, earlier=earlier, new_best=new_best,
                                        order_seed=order_seed, priors=priors or {})
        verdict = self._ask(verdict_schema(tuple(knob["name"] for knob in space)), values)
        return verdict.model_copy(update={"is_new_best": new_best})

    def _picked_verdict(self, space: Sequence[KnobSpec], values: dict[str, str], facts: Diagnostics, *,
                        newest: TrialRecord, earlier: TrialRecord | None, new_best: bool,
                        order_seed: int, priors: Mapping[str, Any]) -> Verdict:
        """Menu mode: outcome, main problem and gradient steps read from the model's probabilities; no text.

        The outcome is read between "improved" and "no gain" (code corrects
        a misreading later, `graphs.words`), the main problem among those
        code found, and the steps from a lettered menu of remedies the
        playbook backs for those problems (`agents.menus.remedy_menu`),
        shown in an order shuffled by `order_seed` with the model's
        position prior (`priors`, the run's record) divided out.
        """
        scored_trial = scored(newest)
        found = diagnoses.supported(facts, new_best=new_best, scored=scored_trial)
        problems: list[str] = [d for d in found[1:] if d != "healthy"]
        causes: list[str] = [d for d in found if d not in ("healthy", "failed")]
        menu = remedy_menu(space, causes, newest, earlier)
        order = scoring.shuffled(len(menu), order_seed)
        template = load_prompt("evaluator_menu")
        base = values | {"problems": ", ".join(problems) or "none"}
        messages = template.render(**base, steps=lettered([step_line(m) for m in menu], order) or "(none)")
        outcome: str = found[0]
        diagnosis: str = problems[0] if problems else "healthy"
        asked = ([('{"outcome": "', diagnoses.OUTCOMES[:2])] if scored_trial else []) + \
            ([('{"diagnosis": "', problems)] if len(problems) > 1 else [])
        steps: list[GradientStep] = []
        record: dict[str, Any] = {}
        if menu:
            read, rated = self._read_pick(messages, lambda: template.render(**base, steps=hidden(len(menu))), order,
                                          scoring.prior(priors, len(menu), "steps"), '{"steps": ["',
                                          take=min(2, len(menu)), also=asked)
            chosen = read.chosen[:1] + [i for i in read.chosen[1:] if read.preference[i] >= 1 / len(menu)]
            steps = [GradientStep(knob=menu[i]["knob"], direction=menu[i]["direction"], reason="", confidence=None,
                                  cause=menu[i]["cause"]) for i in chosen]
            record = read.record("steps") | {"menu": menu}
        else:
            rated = self._rate(messages, asked) if asked else []
        answers = dict(zip((a for a, _ in asked), rated, strict=True))
        if scored_trial:
            outcome = scoring.top(diagnoses.OUTCOMES[:2], answers['{"outcome": "'], outcome)
        if len(problems) > 1:
            diagnosis = scoring.top(problems, answers['{"diagnosis": "'], diagnosis)
        return Verdict(is_new_best=new_best, analysis="", gradient=steps, outcome=outcome, diagnosis=diagnosis,
                       scores=record or None)

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
        values = render.epoch_context(knobs, run, metric, facts)
        if self.menu:
            problems = tuple(epoch_flags(facts))
            schema = menu_epoch_verdict_schema(tuple(k["name"] for k in knobs), directions(knobs),
                                               problems or ("healthy",), problems)
            picked = self._ask(schema, values | {"problems": ", ".join(problems) or "none"},
                               prompt="evaluator_epoch_menu").model_dump()
            verdict = EpochVerdict(healthy=bool(picked["healthy"]), analysis="", diagnosis=str(
                picked.get("diagnosis") or (problems[0] if problems else "healthy")), gradient=[
                GradientStep(knob=str(g["knob"]), direction=str(g["direction"]), reason="", confidence=None,
                             cause=str(g["cause"])) for g in picked.get("gradient") or []])
        else:
            verdict = self._ask(epoch_verdict_schema(tuple(knob["name"] for knob in knobs)), values,
                                prompt="evaluator_epoch")
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
    return f"newest {value(now)} vs best {value(then)} ({now - then:+.3g}; {metric['direction']}): {verdict}."
