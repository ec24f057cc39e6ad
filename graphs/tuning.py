"""The LGT loop as a LangGraph state machine.

    setup -> [approve] -> train -> evaluate -> [optimize every K rounds] -> advise -> [approve] -> train ...
                                      \\-> report, once the trial budget is spent

The Optimizer runs before the Advisor so that rewritten guidance is used
in the very next proposal. Training happens only in `train`, and the trial
is written to the study only in `evaluate` (once its verdict exists, since
Optuna freezes a finished trial's attributes); both check for work a crash
may have left done, so a resumed run neither loses nor repeats a trial.
Nodes only record: the app shell renders the change log from the study.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agents import scoring
from agents.records import best_position
from graphs import proposers, rounds
from graphs.adaptation import run_adaptive_trial
from graphs.state import Deps, TuningState
from lgt.vocabulary import edited
from tuning_targets import config_diff


def build_graph(*, approve: bool = False) -> StateGraph[TuningState, Deps, TuningState, TuningState]:
    graph = StateGraph(TuningState, context_schema=Deps)
    graph.add_node("setup", rounds.setup)
    graph.add_node("train", train)
    graph.add_node("evaluate", evaluate)
    graph.add_node("advise", advise)
    rounds.add_shared_nodes(graph)
    next_to_train = "approve" if approve else "train"
    if approve:
        graph.add_node("approve", approve_proposal, destinations=("train", "advise"))
    graph.add_edge(START, "setup")
    graph.add_edge("setup", next_to_train)
    graph.add_edge("train", "evaluate")
    graph.add_edge("advise", next_to_train)
    return graph


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
        pending["source"] = edited(pending["source"])
    return Command(goto="train", update={"pending": pending})


def train(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    pending = state["pending"]
    assert pending is not None
    if deps.external:
        return trained_elsewhere(state, pending)
    number = len(state["trials"])
    deps.progress.on_proposal(state["round"], state["budget"], pending)
    deps.progress.on_trial_start(number, number + 1, state["budget"], pending["config"])
    # What is left of the epoch budget: this trial stops there, in either mode, as a baseline's does.
    left = None if deps.epoch_budget is None else max(1, deps.epoch_budget - state.get("epochs_used", 0))
    if deps.adapt == "epoch":
        assert deps.advisor is not None, "the serial loop needs an Advisor"
        adaptive = run_adaptive_trial(deps.target, pending["config"], evaluator=deps.evaluator,
                                      advisor=deps.advisor, seed=deps.seed, epoch_budget=left,
                                      check=deps.adapt_check, guidance=state.get("guidance") or None,
                                      reporter=deps.progress.epoch_reporter(),
                                      on_entry=deps.progress.on_schedule_entry)
        result = adaptive.result
        adaptation = {"schedule": adaptive.schedule, "epochs_trained": adaptive.epochs_trained,
                      "final_config": adaptive.final_config, "stop_reason": adaptive.stop_reason}
    else:
        result = deps.target.run(pending["config"], deps.progress.epoch_reporter(), seed=deps.seed,
                                 max_steps=math.inf if left is None else left)
        adaptation = {"epochs_trained": len(result.history)}
    deps.progress.on_trial_end(number, result)
    return {"last_result": result.to_dict(), "last_adaptation": adaptation}


def trained_elsewhere(state: TuningState, pending: dict[str, Any]) -> dict[str, Any]:
    """The round's trial runs outside the graph (`lgt.sampler.LGTSampler`): hand out its config, await its result.

    The node pauses at `interrupt` with the config; the sampler gives it to
    the user's objective and resumes the graph with what ran, its result,
    and any trials that finished meanwhile outside the rounds (asked while
    this one ran). Nothing is trained here, so re-running this node from
    its first line on resume is harmless.
    """
    outcome = interrupt({"round": state["round"], "config": pending["config"]})
    ran = dict(outcome.get("config") or pending["config"])
    if ran != pending["config"]:
        notes = [*pending.get("notes", []), "the objective ran other values than proposed: "
                 + ", ".join(f"{k}={ran.get(k)!r}" for k in sorted(set(ran) | set(pending["config"]))
                             if ran.get(k) != pending["config"].get(k))]
        pending = {**pending, "config": ran, "notes": notes}
    return {"pending": pending, "last_result": outcome["result"],
            "last_adaptation": {"epochs_trained": len(outcome["result"].get("history") or [])},
            "others": list(outcome.get("others") or [])}


def evaluate(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    deps = runtime.context
    pending, result = state["pending"], state["last_result"]
    assert pending is not None and result is not None
    if state.get("others"):  # trials that ran outside the rounds meanwhile: evidence like any other
        merged = [*state["trials"], *state["others"]]
        state = {**state, "trials": merged, "best": best_position(merged, deps.target.direction)}
    trials = state["trials"]
    best = rounds.best_record(state)
    newest = rounds.new_record(deps, state["round"], pending, result, state.get("last_adaptation"))
    newest["number"] = len(trials)
    newest["verdict"] = verdict = rounds.judge(deps, newest, best, state)
    usage, spent = rounds.llm_spent(deps, state)
    recorded = deps.recorder.find(state["round"])
    if recorded is None:
        recorded = deps.recorder.record(state["round"], newest, result, spent)
    newest["number"] = recorded
    deps.progress.on_verdict(newest)
    return {
        "trials": [*trials, newest], "round": state["round"] + 1, "others": [],
        "best": len(trials) if rounds.is_new_best(deps, newest, best) else state.get("best"), "pending": None,
        "last_result": None, "last_adaptation": None,
        "epochs_used": state.get("epochs_used", 0) + int(newest["epochs_trained"]), "last_verdict": verdict,
        "llm_usage_recorded": usage, "feedback": "; ".join(pending["notes"]) or None,
        "pick_prior": scoring.folded(state.get("pick_prior"), [verdict.get("scores") or {}])}


def advise(state: TuningState, runtime: Runtime[Deps]) -> dict[str, Any]:
    """The round's candidate, from the run's proposer (`graphs.proposers`)."""
    rounds.stop_if_llm_is_down(state, runtime.context)
    candidate = proposers.propose(state, runtime.context)
    return {"pending": candidate.to_dict(), "feedback": None, **proposers.prior_update(state, [candidate])}
