"""The LGT loop for parallel rounds: K proposals per round, trained by workers.

    setup -> dispatch -> evaluate_batch -> [optimize every K rounds] -> advise_batch -> dispatch ...
                                  \\-> report, once the trial budget is spent

Round 1 is the default config alone, as in the serial loop, so every method
starts from the same trial and the Advisor has evidence before it spreads
bets. `dispatch` queues the round's configs in the Optuna study (with the
proposals as user attrs) and waits for workers to finish them; it queues
nothing a crash already queued, so a restarted driver picks up where it
stopped. The Evaluator judges each round's best trial against the best so
far (one call per round, not per trial); the Advisor sees every trial of the
batch in the record.
"""

from __future__ import annotations

import random
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents import AgentFailure, Verdict, diagnose, summarize_curve
from graphs.changelog import write_changelog
from graphs.proposals import Candidate, apply_proposal, perturb, tpe_suggestion
from graphs.state import Deps, TuningState
from graphs.tuning import _verdict, _verdict_line, for_agents, metric_info, optimize, report, setup
from tuning_targets import Config, config_diff, config_key


def build_batch_graph() -> StateGraph:
    graph = StateGraph(TuningState, context_schema=Deps)
    graph.add_node("setup", batch_setup)
    graph.add_node("dispatch", dispatch)
    graph.add_node("evaluate", evaluate_batch)
    graph.add_node("optimize", optimize)
    graph.add_node("advise", advise_batch)
    graph.add_node("report", report)
    graph.add_edge(START, "setup")
    graph.add_edge("setup", "dispatch")
    graph.add_edge("dispatch", "evaluate")
    graph.add_conditional_edges("evaluate", after_batch, ["report", "optimize", "advise"])
    graph.add_edge("optimize", "advise")
    graph.add_edge("advise", "dispatch")
    graph.add_edge("report", END)
    return graph


def batch_setup(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    update = setup(state, runtime)
    if update:
        update["pending_batch"] = [update.pop("pending")]
        update["pending"] = None
    return update


def dispatch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Queue the round's configs for workers and wait for all of them."""
    deps = runtime.context
    assert deps.dispatcher is not None, "parallel rounds need a dispatcher"
    batch = state["pending_batch"] or []
    usage = deps.llm_usage()
    before = state.get("llm_usage_recorded") or {}
    spent = {k: round(v - before.get(k, 0.0), 3) for k, v in usage.items()}
    deps.dispatcher.submit(state["round"], batch, spent)
    described = "; ".join(", ".join(f"{k}={v}" for k, v in c["changes"].items()) or "the default config"
                          for c in batch)
    deps.progress.on_message(f"round {state['round']} ({len(state['trials'])}/{state['budget']} trials done): "
                             f"queued {len(batch)} for workers: {described}")
    results = deps.dispatcher.collect(state["round"], len(batch), deps.progress)
    return {"batch_results": [{"number": number, **result} for number, result in results],
            "llm_usage_recorded": usage}


def evaluate_batch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    target = deps.target
    trials = list(state["trials"])
    best_index = state.get("best")
    best = trials[best_index] if best_index is not None else None
    entries = []
    for candidate, result in zip(state["pending_batch"] or [], state["batch_results"] or []):
        entry = {"round": state["round"], **candidate, **result,
                 "curve": summarize_curve(result["history"], metric_info(deps))}
        entry["diagnostics"] = dict(diagnose(for_agents(entry), metric_info(deps)))
        entry["verdict"] = None
        entries.append(entry)
    complete = [e for e in entries if e["status"] == "complete"]
    top = None
    for entry in complete:
        if top is None or target.better(entry["val_metric"], top["val_metric"]):
            top = entry
    judged = top or entries[0]
    is_best = top is not None and (best is None or target.better(top["val_metric"], best["val_metric"]))
    try:
        verdict = deps.evaluator.judge(space=target.space.describe(), newest=for_agents(judged),
                                       best=None if best is None else for_agents(best), metric=metric_info(deps),
                                       diagnostics=diagnose(for_agents(judged), metric_info(deps))).model_dump()
    except AgentFailure as exc:
        verdict = Verdict(is_new_best=is_best, analysis="(no verdict from the Evaluator; judged by the numbers)",
                          gradient=[], correction=f"Evaluator failed: {exc}").model_dump()
    judged["verdict"] = verdict
    if deps.dispatcher is not None:
        deps.dispatcher.note_verdict(state["round"], verdict)
    for entry in entries:
        deps.progress.on_message(f"  #{entry['number']}: " + _verdict_line(
            {**entry, "verdict": entry["verdict"] or {"is_new_best": entry is top and is_best,
                                                       "analysis": "(batch member)"}}, target.metric).strip())
    new_trials = [*trials, *entries]
    update: dict[str, Any] = {
        "trials": new_trials, "round": state["round"] + 1,
        "best": new_trials.index(top) if is_best and top is not None else best_index,
        "pending_batch": None, "batch_results": None, "last_verdict": verdict,
        "feedback": "; ".join(n for e in entries for n in e.get("notes", [])) or None}
    write_changelog(deps.run_dir / "changelog.md", {**state, **update}, target)
    return update


def after_batch(state: TuningState, runtime: Runtime[Deps]) -> str:
    if len(state["trials"]) >= state["budget"]:
        return "report"
    every = runtime.context.optimize_every
    if every > 0 and (state["round"] - 1) % every == 0:
        return "optimize"
    return "advise"


def advise_batch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """K proposals: repaired, duplicates (with the past or each other) refused once, then perturbed or TPE."""
    deps = runtime.context
    space = deps.target.space
    trials = state["trials"]
    size = min(deps.parallel, state["budget"] - len(trials))
    base = trials[state["best"]]["config"] if state.get("best") is not None else deps.target.default_config
    tried = {config_key(t["config"]) for t in trials}
    rng = random.Random(deps.seed * 1000 + state["round"])
    chosen: list[Candidate] = []
    repeats: list[Candidate] = []
    feedback = state.get("feedback")
    for attempt in (1, 2):
        wanted = size - len(chosen)
        if wanted == 0:
            break
        try:
            proposals = deps.advisor.propose_batch(wanted, space=space.describe(),
                                                   trials=[for_agents(t) for t in trials], metric=metric_info(deps),
                                                   gradient=_verdict(state), guidance=state.get("guidance") or None,
                                                   feedback=feedback or ())
        except AgentFailure as exc:
            deps.progress.on_message(f"  advisor unavailable ({exc}); TPE fills the round")
            break
        refused = []
        for proposal in proposals[:wanted]:
            dumped = proposal.model_dump()
            config, changes, reasons, notes = apply_proposal(space, base, dumped["changes"])
            candidate = Candidate(config, "advisor", changes, reasons, dumped.get("expected_effect", ""), notes)
            if config_key(config) in tried:
                candidate.notes.append("repeated a config already run or proposed in this batch")
                repeats.append(candidate)
                refused.append(", ".join(f"{k}={v}" for k, v in changes.items()) or "no effective change")
                continue
            tried.add(config_key(config))
            chosen.append(candidate)
        feedback = ("These were already run or proposed twice: " + "; ".join(refused)
                    + ". Propose different changes.") if refused else None
    while len(chosen) < size:
        chosen.append(_filler(space, base, trials, tried, repeats, rng, deps))
        tried.add(config_key(chosen[-1].config))
    return {"pending_batch": [c.to_dict() for c in chosen], "feedback": None}


def _filler(space: Any, base: Config, trials: list[dict[str, Any]], tried: set[str], repeats: list[Candidate],
            rng: random.Random, deps: Deps) -> Candidate:
    """A refused repeat nudged to something new, or else TPE's suggestion."""
    if repeats:
        candidate = repeats.pop(0)
        config, moved = perturb(space, candidate.config, tried, rng)
        candidate.config = config
        candidate.changes = {k: v[1] for k, v in config_diff(base, config).items()}
        candidate.source = "advisor+perturbed"
        candidate.notes = [*candidate.notes, f"perturbed {', '.join(moved)} to avoid repeating a config"]
        return candidate
    config = tpe_suggestion(space, trials, deps.target.direction, deps.seed + len(tried), tried)
    return Candidate(config=config, source="fallback", changes={k: v[1] for k, v in config_diff(base, config).items()},
                     expected_effect="Optuna TPE's suggestion", notes=["the Advisor gave too few usable proposals"])
