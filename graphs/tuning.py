"""The LGT loop as a LangGraph state machine.

    setup -> [approve] -> train -> evaluate -> [optimize every K rounds] -> advise -> [approve] -> train ...
                                      \\-> report, once the trial budget is spent

The Optimizer runs before the Advisor so that rewritten guidance is used
in the very next proposal. Training happens only in `train`, and the trial
is written to the study only in `evaluate` (once its verdict exists, since
Optuna freezes a finished trial's attributes); both check for work a crash
may have left done, so a resumed run neither loses nor repeats a trial.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents import AgentFailure, Verdict, diagnose, summarize_curve
from graphs.adaptation import run_adaptive_trial
from graphs.changelog import write_changelog
from graphs.schedule import plot_schedule
from graphs.proposals import Candidate, apply_proposal, perturb, tpe_suggestion
from graphs.state import Deps, TuningState
from tuning_targets import config_diff, config_key


def build_graph(*, approve: bool = False) -> StateGraph:
    graph = StateGraph(TuningState, context_schema=Deps)
    graph.add_node("setup", setup)
    graph.add_node("train", train)
    graph.add_node("evaluate", evaluate)
    graph.add_node("optimize", optimize)
    graph.add_node("advise", advise)
    graph.add_node("report", report)
    next_to_train = "approve" if approve else "train"
    if approve:
        graph.add_node("approve", approve_proposal, destinations=("train", "advise"))
    graph.add_edge(START, "setup")
    graph.add_edge("setup", next_to_train)
    graph.add_edge("train", "evaluate")
    graph.add_conditional_edges("evaluate", after_evaluate, ["report", "optimize", "advise"])
    graph.add_edge("optimize", "advise")
    graph.add_edge("advise", next_to_train)
    graph.add_edge("report", END)
    return graph


def metric_info(deps: Deps) -> dict[str, str]:
    return {"name": deps.target.metric, "direction": deps.target.direction}


def for_agents(trial: dict[str, Any]) -> dict[str, Any]:
    """A trial as the agents may see it: no test metric, ever."""
    return {k: v for k, v in trial.items() if k not in ("test_metric", "extra_metrics")}


def setup(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    if state.get("trials"):
        return {}
    deps = runtime.context
    first = Candidate(config=deps.target.default_config, source="default",
                      expected_effect="the untuned starting point every method shares")
    return {"round": 1, "trials": [], "best": None, "pending": first.to_dict(), "last_verdict": None,
            "guidance": "", "guidance_history": [], "feedback": None, "done": False,
            "epoch_budget": deps.epoch_budget, "adapt": deps.adapt}


def approve_proposal(state: TuningState, runtime: Runtime[Deps]) -> Command[Literal["train", "advise"]]:
    """Pause for a person: accept, edit values, or reject with a note for the Advisor."""
    deps = runtime.context
    pending = dict(state["pending"] or {})
    answer = interrupt({"round": state["round"], "config": pending["config"], "changes": pending["changes"],
                        "reasons": pending["reasons"], "source": pending["source"],
                        "expected_effect": pending["expected_effect"]})
    action = (answer or {}).get("action", "accept")
    if action == "reject":
        note = str(answer.get("note") or "no reason given")
        return Command(goto="advise", update={"feedback": f"A person rejected the last proposal: {note}",
                                              "pending": None})
    if action == "edit":
        checked = deps.target.space.validate(dict(answer.get("values") or {}), base=pending["config"],
                                             strict=False)
        edits = config_diff(pending["config"], checked.config)
        pending["config"] = checked.config
        pending["changes"] = {**pending["changes"], **{k: v[1] for k, v in edits.items()}}
        pending["reasons"] = {**pending["reasons"], **{k: "edited by a person" for k in edits}}
        pending["notes"] = [*pending.get("notes", []), *checked.notes]
        pending["source"] = "user" if pending["source"] == "default" else pending["source"] + "+user"
    return Command(goto="train", update={"pending": pending})


def train(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    pending = state["pending"]
    assert pending is not None
    changes = ", ".join(f"{k}={v}" for k, v in pending["changes"].items()) or "the default config"
    number = len(state["trials"])
    deps.progress.on_message(f"round {state['round']}/{state['budget']} [{pending['source']}]: {changes}")
    deps.progress.on_trial_start(number, number + 1, state["budget"], pending["config"])
    if deps.adapt == "epoch":
        left = None if deps.epoch_budget is None else max(1, deps.epoch_budget - state.get("epochs_used", 0))
        adaptive = run_adaptive_trial(deps.target, pending["config"], evaluator=deps.evaluator,
                                      advisor=deps.advisor, seed=deps.seed, epoch_budget=left,
                                      check=deps.adapt_check, guidance=state.get("guidance") or None,
                                      reporter=deps.progress.epoch_reporter(),
                                      on_message=lambda text: deps.progress.on_message(f"    {text}"))
        result = adaptive.result
        adaptation = {"schedule": adaptive.schedule, "epochs_trained": adaptive.epochs_trained,
                      "final_config": adaptive.final_config, "stop_reason": adaptive.stop_reason}
    else:
        result = deps.target.run(pending["config"], deps.progress.epoch_reporter(), seed=deps.seed)
        adaptation = {"epochs_trained": len(result.history)}
    deps.progress.on_trial_end(number, result)
    return {"last_result": result.to_dict(), "last_adaptation": adaptation}


def evaluate(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    pending, result = state["pending"], state["last_result"]
    assert pending is not None and result is not None
    trials = state["trials"]
    target = deps.target
    best = trials[state["best"]] if state.get("best") is not None else None
    adaptation = state.get("last_adaptation") or {"epochs_trained": len(result["history"])}
    newest = {"number": len(trials), "round": state["round"], **pending, **result, **adaptation,
              "curve": summarize_curve(result["history"], metric_info(deps))}
    diagnostics = diagnose(for_agents(newest), metric_info(deps))
    newest["diagnostics"] = dict(diagnostics)
    is_best = result["status"] == "complete" and (best is None or target.better(result["val_metric"],
                                                                                   best["val_metric"]))
    try:
        verdict = deps.evaluator.judge(space=target.space.describe(), newest=for_agents(newest),
                                       best=None if best is None else for_agents(best), metric=metric_info(deps),
                                       diagnostics=diagnostics).model_dump()
    except AgentFailure as exc:
        verdict = Verdict(is_new_best=is_best, analysis="(no verdict from the Evaluator; judged by the numbers)",
                          gradient=[], correction=f"Evaluator failed: {exc}").model_dump()
    newest["verdict"] = verdict
    usage = deps.llm_usage()
    before = state.get("llm_usage_recorded") or {}
    spent = {k: round(v - before.get(k, 0.0), 3) for k, v in usage.items()}
    recorded = deps.recorder.find(state["round"])
    if recorded is None:
        recorded = deps.recorder.record(state["round"], pending["config"], result, {
            "source": pending["source"], "proposal": pending["changes"], "reasons": pending["reasons"],
            "expected_effect": pending["expected_effect"], "notes": pending["notes"], "verdict": verdict,
            **adaptation, **spent})
    newest["number"] = recorded
    if adaptation.get("schedule"):
        newest["schedule_plot"] = plot_schedule(
            deps.run_dir / f"schedule-trial{recorded}.png", adaptation["schedule"], target.metric,
            title=f"trial #{recorded}: the schedule the agents wrote").name
    deps.progress.on_message(_verdict_line(newest, target.metric))
    update: dict[str, Any] = {
        "trials": [*trials, newest], "round": state["round"] + 1,
        "best": len(trials) if is_best else state.get("best"), "pending": None, "last_result": None,
        "last_adaptation": None, "epochs_used": state.get("epochs_used", 0) + int(adaptation["epochs_trained"]),
        "last_verdict": verdict, "llm_usage_recorded": usage,
        "feedback": "; ".join(pending["notes"]) or None}
    write_changelog(deps.run_dir / "changelog.md", {**state, **update}, target)
    return update


def _verdict_line(trial: dict[str, Any], metric: str) -> str:
    if trial["status"] != "complete":
        return f"  verdict: failed - {trial['fail_reason']}"
    flag = "new best" if trial["verdict"]["is_new_best"] else "not better"
    analysis = trial["verdict"]["analysis"].split(". ")[0][:140]
    return f"  verdict: val {metric} {trial['val_metric']:.4f}, {flag}. {analysis}"


def after_evaluate(state: TuningState, runtime: Runtime[Deps]) -> str:
    epoch_budget = runtime.context.epoch_budget
    if len(state["trials"]) >= state["budget"] or (epoch_budget is not None
                                                   and state.get("epochs_used", 0) >= epoch_budget):
        return "report"
    every = runtime.context.optimize_every
    if every > 0 and len(state["trials"]) % every == 0:
        return "optimize"
    return "advise"


def optimize(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    record = [for_agents(t) for t in state["trials"]]
    try:
        guidance = deps.optimizer.rewrite(guidance_history=[v["guidance"] for v in state["guidance_history"]],
                                          record=record, metric=metric_info(deps))
    except AgentFailure as exc:
        deps.progress.on_message(f"  optimizer unavailable ({exc}); guidance kept")
        return {}
    version = {"version": len(state["guidance_history"]) + 1, "after_round": state["round"] - 1,
               "guidance": guidance.guidance, "reason": guidance.reason_for_change}
    deps.progress.on_message(f"  guidance v{version['version']}: {guidance.guidance[:140]}")
    return {"guidance": guidance.guidance, "guidance_history": [*state["guidance_history"], version]}


def advise(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Ask the Advisor; repair, refuse repeats once, then perturb; fall back to TPE if it fails."""
    deps = runtime.context
    space = deps.target.space
    trials = state["trials"]
    base = trials[state["best"]]["config"] if state.get("best") is not None else deps.target.default_config
    tried = {config_key(t["config"]) for t in trials}
    rng = random.Random(deps.seed * 1000 + state["round"])
    feedback = state.get("feedback")
    for attempt in (1, 2):
        try:
            proposal = deps.advisor.propose(space=space.describe(), trials=[for_agents(t) for t in trials],
                                            metric=metric_info(deps), gradient=_verdict(state),
                                            guidance=state.get("guidance") or None, feedback=feedback or ())
        except AgentFailure as exc:
            config = tpe_suggestion(space, trials, deps.target.direction, deps.seed, tried)
            candidate = Candidate(config=config, source="fallback",
                                  changes={k: v[1] for k, v in config_diff(base, config).items()},
                                  expected_effect="Optuna TPE's suggestion",
                                  notes=[f"Advisor failed ({exc}); TPE suggested this round"])
            return {"pending": candidate.to_dict(), "feedback": None}
        dumped = proposal.model_dump()
        config, changes, reasons, notes = apply_proposal(space, base, dumped["changes"])
        candidate = Candidate(config, "advisor", changes, reasons, dumped.get("expected_effect", ""), notes)
        if config_key(config) not in tried:
            return {"pending": candidate.to_dict(), "feedback": None}
        feedback = ("That config was already run (" + (", ".join(f"{k}={v}" for k, v in changes.items())
                    or "no effective change") + "). Propose a different change.")
        notes.append("proposal repeated a config already run" + ("; asked again" if attempt == 1 else ""))
    config, moved = perturb(space, config, tried, rng)
    candidate.config = config
    candidate.changes = {k: v[1] for k, v in config_diff(base, config).items()}
    candidate.source = "advisor+perturbed"
    candidate.notes = [*notes, f"perturbed {', '.join(moved)} to avoid repeating a config"]
    return {"pending": candidate.to_dict(), "feedback": None}


def _verdict(state: TuningState) -> Verdict | None:
    last = state.get("last_verdict")
    return Verdict.model_validate(last) if last else None


def report(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    write_changelog(deps.run_dir / "changelog.md", state, deps.target, final=True)
    return {"done": True}
