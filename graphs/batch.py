"""The LGT loop for parallel rounds: K proposals per round, trained by workers.

    setup -> dispatch -> evaluate_batch -> [optimize every K rounds] -> advise_batch -> dispatch ...
                                  \\-> report, once the trial or the epoch budget is spent

Round 1 is the default config alone, as in the serial loop, so every method
starts from the same trial and the Advisor has evidence before it spreads
bets. `dispatch` queues the round's configs in the Optuna study (with the
proposals as user attrs) and waits for workers to finish them; it queues
nothing a crash already queued, so a restarted driver picks up where it
stopped. Workers stop once the run's budget is spent, epochs included (as
the serial loop stops, `rounds.budget_spent`); the dispatcher then stops
waiting for the round's trials no worker will run, and the round holds the
trials that ran. The Evaluator judges each round's best trial against the
best so far (one call per round, not per trial); the Advisor sees every
trial of the batch in the record.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from agents import scoring
from agents.records import TrialRecord, best_trial
from graphs import proposers, rounds
from graphs.state import Deps, TuningState


def build_batch_graph() -> StateGraph[TuningState, Deps, TuningState, TuningState]:
    graph = StateGraph(TuningState, context_schema=Deps)
    graph.add_node("setup", batch_setup)
    graph.add_node("dispatch", dispatch)
    graph.add_node("evaluate", evaluate_batch)
    graph.add_node("advise", advise_batch)
    rounds.add_shared_nodes(graph)
    graph.add_edge(START, "setup")
    graph.add_edge("setup", "dispatch")
    graph.add_edge("dispatch", "evaluate")
    graph.add_edge("advise", "dispatch")
    return graph


def batch_setup(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    update = rounds.setup(state, runtime)
    if update:
        update["pending_batch"] = [update.pop("pending")]
        update["pending"] = None
    return update


def dispatch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Queue the round's configs for workers and wait for them (all, or those that ran once the budget is spent)."""
    deps = runtime.context
    assert deps.dispatcher is not None, "parallel rounds need a dispatcher"
    batch = state["pending_batch"] or []
    usage, spent = rounds.llm_spent(deps, state)
    deps.dispatcher.submit(state["round"], batch, spent)
    for candidate in batch:
        deps.progress.on_proposal(state["round"], state["budget"], candidate)
    deps.progress.on_message(f"round {state['round']} ({len(state['trials'])}/{state['budget']} trials done): "
                             f"queued {len(batch)} for workers")
    results = deps.dispatcher.collect(state["round"], len(batch), deps.progress)
    return {"batch_results": [{"slot": slot, "number": number, **result} for slot, number, result in results],
            "llm_usage_recorded": usage}


def evaluate_batch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """Record the round's trials that ran, judge its best against the best so far, and count their epochs."""
    deps = runtime.context
    trials = list(state["trials"])
    best = rounds.best_record(state)
    batch = state["pending_batch"] or []
    entries: list[TrialRecord] = []
    for result in state["batch_results"] or []:
        slot = int(result["slot"])
        entry = rounds.new_record(deps, state["round"], {**batch[slot], "slot": slot}, result)
        entry["number"] = int(result["number"])
        entries.append(entry)
    update: dict[str, Any] = {"round": state["round"] + 1, "pending_batch": None, "batch_results": None,
                              "epochs_used": state.get("epochs_used", 0) + sum(e["epochs_trained"] for e in entries),
                              "feedback": "; ".join(n for e in entries for n in e.get("notes", [])) or None}
    if not entries:  # the budget was spent before any worker took a trial of the round
        return update
    top = best_trial(entries, deps.metric)
    judged = top or entries[0]
    judged["verdict"] = verdict = rounds.judge(deps, judged, best, state)
    deps.recorder.note_verdict(state["round"], judged["number"], verdict)
    for entry in entries:
        deps.progress.on_verdict(entry)
    new_trials = [*trials, *entries]
    improved = top is not None and rounds.is_new_best(deps, top, best)
    return update | {
        "trials": new_trials, "best": new_trials.index(top) if improved and top is not None else state.get("best"),
        "last_verdict": verdict, "pick_prior": scoring.folded(state.get("pick_prior"), [verdict.get("scores") or {}])}


def advise_batch(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """The round's K candidates, from the run's proposer (`graphs.proposers.propose_batch`)."""
    deps = runtime.context
    rounds.stop_if_llm_is_down(state, deps)
    size = min(deps.parallel, state["budget"] - len(state["trials"]))
    batch = proposers.propose_batch(state, deps, size)
    return {"pending_batch": [c.to_dict() for c in batch], "feedback": None, **proposers.prior_update(state, batch)}
