"""What a round does the same way in the serial and the parallel graph.

Both graphs start from the default config, judge trials with the
Evaluator (falling back to the numbers when it fails), let the Optimizer
rewrite the guidance every few rounds, nudge a proposal that repeats a
config, count the LLM's cost per round, and finish by telling the
recorder. Each of those is written once, here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, StateGraph
from langgraph.runtime import Runtime

from agents import AgentFailure, EndpointDown, Verdict, diagnose, scoring, summarize_curve
from agents.records import TrialRecord, scored_value
from agents.schemas import REASON_CHARS
from agents.wording import says_nothing, word_problems
from graphs import words
from graphs.proposals import Candidate, perturb
from graphs.state import Deps, TuningState
from lgt.direction import is_better
from lgt.vocabulary import is_source
from tuning_targets import Config, SearchSpace, config_changes

NO_VERDICT = "(no verdict from the Evaluator; judged by the numbers)"


def setup(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Round 1 is the untuned default config, the shared starting point of every method."""
    if state.get("trials"):
        return {}
    first = Candidate(config=runtime.context.target.default_config, source="default",
                      expected_effect="the untuned starting point every method shares")
    return {"round": 1, "trials": [], "best": None, "pending": first.to_dict(), "last_verdict": None,
            "guidance": "", "guidance_history": [], "feedback": None, "done": False}


def new_record(deps: Deps, round_number: int, candidate: Mapping[str, Any], result: Mapping[str, Any],
               adaptation: Mapping[str, Any] | None = None) -> TrialRecord:
    """A finished trial as the state keeps it: the proposal, the result (no test metric) and its curve facts."""
    record: TrialRecord = {
        "round": round_number, "config": dict(candidate["config"]), "source": str(candidate["source"]),
        "changes": dict(candidate.get("changes") or {}), "reasons": dict(candidate.get("reasons") or {}),
        "expected_effect": str(candidate.get("expected_effect") or ""), "notes": list(candidate.get("notes") or []),
        "evidence": dict(candidate.get("evidence") or {}), "rationale": str(candidate.get("rationale") or ""),
        "replaced": list(candidate.get("replaced") or []), "pick": candidate.get("pick"),
        "departed": candidate.get("departed"), "gated": bool(candidate.get("gated")),
        "status": result["status"], "val_metric": result["val_metric"], "fail_reason": result.get("fail_reason"),
        "history": list(result.get("history") or []), "best_epoch": result.get("best_epoch"),
        "seconds": float(result.get("seconds") or 0.0), "n_params": int(result.get("n_params") or 0),
        "epochs_trained": len(result.get("history") or []), "verdict": None,
    }
    if "slot" in candidate:
        record["slot"] = int(candidate["slot"])
    record.update(adaptation or {})  # type: ignore[typeddict-item]  # schedule, epochs_trained, ... as typed above
    record["curve"] = summarize_curve(list(record["history"]), deps.metric)
    record["diagnostics"] = dict(diagnose(record, deps.metric))
    return record


def is_new_best(deps: Deps, record: TrialRecord, best: TrialRecord | None) -> bool:
    return is_better(scored_value(record), None if best is None else scored_value(best), deps.target.direction)


def judge(deps: Deps, newest: TrialRecord, best: TrialRecord | None, state: TuningState) -> dict[str, Any]:
    """The Evaluator's verdict on `newest`, its words checked; when it fails, a verdict from the numbers saying so."""
    try:
        verdict = deps.evaluator.judge(space=deps.target.space.describe(), newest=newest, best=best,
                                       metric=deps.metric, diagnostics=newest.get("diagnostics"),
                                       data=deps.data_profile, order_seed=deps.seed * 1000 + state["round"],
                                       priors=state.get("pick_prior") or {}).model_dump()
    except AgentFailure as exc:
        return Verdict(is_new_best=is_new_best(deps, newest, best), analysis=NO_VERDICT, gradient=[],
                       correction=f"Evaluator failed: {exc}").model_dump()
    knobs = {k["name"]: k for k in deps.target.space.describe()}
    return words.checked_verdict(verdict, newest, best, knobs, deps.metric)


def llm_spent(deps: Deps, state: TuningState) -> tuple[dict[str, float], dict[str, float]]:
    """(usage so far, what the round added): the LLM's seconds and tokens since the last recorded round."""
    usage = deps.llm_usage()
    before = state.get("llm_usage_recorded") or {}
    return usage, {k: round(v - before.get(k, 0.0), 3) for k, v in usage.items()}


def best_record(state: TuningState) -> TrialRecord | None:
    index = state.get("best")
    return None if index is None else state["trials"][index]


def base_config(deps: Deps, state: TuningState) -> Config:
    """The config a proposal's changes apply to: the best so far, else the default."""
    best = best_record(state)
    return dict(best["config"]) if best is not None else dict(deps.target.default_config)


def last_gradient(state: TuningState) -> Verdict | None:
    last = state.get("last_verdict")
    return Verdict.model_validate(last) if last else None


def nudge(candidate: Candidate, space: SearchSpace, base: Config, tried: set[str], rng: random.Random) -> Candidate:
    """A proposal that repeats a config already run, moved to an untried one (resampling a knob, then more)."""
    config, moved = perturb(space, candidate.config, tried, rng)
    candidate.config = config
    candidate.changes = {k: new for k, (_, new) in config_changes(base, config).items()}
    candidate.source = "advisor+perturbed"
    candidate.notes = [*candidate.notes, f"perturbed {', '.join(moved)} to avoid repeating a config"]
    return candidate


def optimize(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """The Optimizer rewrites the guidance from the record so far; a failure keeps the current one."""
    deps = runtime.context
    space = deps.target.space.describe()
    knobs = {k["name"]: k for k in space}
    try:
        guidance = deps.optimizer.rewrite(guidance_history=[v["guidance"] for v in state["guidance_history"]],
                                          record=state["trials"], metric=deps.metric, data=deps.data_profile,
                                          space=space, order_seed=deps.seed * 1000 + state["round"],
                                          priors=state.get("pick_prior") or {})
    except AgentFailure as exc:
        deps.progress.on_message(f"  optimizer unavailable ({exc}); guidance kept")
        return {}
    folded = {"pick_prior": scoring.folded(state.get("pick_prior"), [guidance.scores])} if guidance.scores else {}
    if guidance.rules is not None:  # menu mode: code writes the rules the record backs
        texts, dropped = words.checked_rules(guidance.rules, state["trials"], knobs, deps.metric)
        named = sorted({str(r.get("knob")) for r in guidance.rules})
        guidance = guidance.model_copy(update={
            "guidance": "; ".join(texts),
            "reason_for_change": (f"the Optimizer's rules on {', '.join(named)}, each checked against the record"
                                  if texts else "")})
        problems = ["no rule the record backs: " + "; ".join(dropped) if dropped else "no rule picked"] \
            if not texts else []
        if texts and dropped:
            guidance = guidance.model_copy(update={"reason_for_change": guidance.reason_for_change + " (dropped: "
                                                   + "; ".join(dropped) + ")"})
    else:
        problems = words.guidance_problems(guidance.guidance, knobs)
    if problems:
        refused = {"after_round": state["round"] - 1, "guidance": guidance.guidance, "problems": problems,
                   "kept": len(state["guidance_history"])}
        deps.recorder.note_guidance(refused | {"refused": True})
        deps.progress.on_guidance(refused | {"refused": True})
        return folded
    version = {"version": len(state["guidance_history"]) + 1, "after_round": state["round"] - 1,
               "guidance": guidance.guidance, "reason": guidance.reason_for_change}
    if guidance.rules is None and (word_problems(guidance.reason_for_change, max_chars=REASON_CHARS,
                                            knobs=list(deps.target.space.knobs))
                                   or says_nothing(guidance.reason_for_change, list(deps.target.space.knobs))):
        version["reason"] = "(no reason that passed the checks)"
    deps.recorder.note_guidance(version)
    deps.progress.on_guidance(version)
    return {"guidance": guidance.guidance, "guidance_history": [*state["guidance_history"], version], **folded}


def report(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    runtime.context.recorder.finish()
    return {"done": True}


def add_shared_nodes(graph: StateGraph[TuningState, Deps, TuningState, TuningState]) -> None:
    """What both loops share after `evaluate`: the stopping rule, the Optimizer's rewrite (then the Advisor), the end."""
    graph.add_node("optimize", optimize)
    graph.add_node("report", report)
    graph.add_conditional_edges("evaluate", after_round, ["report", "optimize", "advise"])
    graph.add_edge("optimize", "advise")
    graph.add_edge("report", END)


def budget_spent(state: TuningState, deps: Deps) -> bool:
    """The one stopping rule of both loops: the trial budget is spent, or the epoch budget (A/B branches count)."""
    return len(state["trials"]) >= state["budget"] or (
        deps.epoch_budget is not None and state.get("epochs_used", 0) >= deps.epoch_budget)


def after_round(state: TuningState, runtime: Runtime[Deps]) -> str:
    """After a round is judged: the report once the budget is spent, else the Optimizer every K rounds, else the Advisor."""
    deps = runtime.context
    if budget_spent(state, deps):
        return "report"
    return "optimize" if optimize_now(deps, state["round"] - 1) else "advise"


def stop_if_llm_is_down(state: TuningState, deps: Deps) -> None:
    """Raise `EndpointDown` once the Advisor fell back `deps.stop_after_fallbacks` rounds in a row.

    A run whose LLM endpoint died would otherwise go on as plain TPE and be
    recorded as LGT. The checkpoint is taken before this node, so `--resume`
    continues from here once the endpoint answers again.
    """
    limit = deps.stop_after_fallbacks
    recent = [t for t in state["trials"][deps.session_start:] if not is_source(t, "default")][-(limit or 1):]
    if not limit or len(recent) < limit or not all(is_source(t, "fallback") for t in recent):
        return
    why = next((n for n in reversed(recent[-1].get("notes") or []) if "failed" in n), "the Advisor failed")
    raise EndpointDown(f"the LLM failed in the last {limit} rounds ({why[:200]}); the run is saved: continue it "
                       f"with `lgt tune --resume {state.get('run_id')}` once the endpoint answers again, or start "
                       f"it with --on-llm-failure tpe to carry on with TPE")


def optimize_now(deps: Deps, rounds_done: int) -> bool:
    return deps.optimize_every > 0 and rounds_done % deps.optimize_every == 0
