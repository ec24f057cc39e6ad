"""Adaptation inside a training run: agents change dynamic knobs between epochs.

After every epoch the Evaluator reads the curve so far (with code-computed
diagnostics). When it calls the curve healthy the run carries on unchanged
and the Advisor is not asked; otherwise the Advisor may propose new values of
dynamic knobs (learning rate, regularisation, augmentation, ...) for the next
epoch. Its output is untrusted: structural knobs are refused with a reason,
values are clipped or snapped by the search space, and nothing trains until
that is done.

With the A/B check on, a proposed change is tested the way the LGT paper's
reference code does it: the next epoch is trained with the change and, from
a snapshot of the same state (weights, optimiser, schedule, RNG), without
it; the run continues from the branch with the better validation metric
(ties keep the unchanged run). Both branches count against the epoch budget.

`run_adaptive_trial` is the entry point; the app shell renders the
resulting schedule (stored with the trial) as change-log lines and a plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agents import AgentFailure, diagnose_epoch
from agents.diagnostics import epoch_flags
from graphs import words
from graphs.roles import EpochAdvisor, EpochEvaluator
from lgt.direction import is_better
from tuning_targets import Reporter, SearchSpace, Target, TrialResult
from tuning_targets.records import EpochRecord
from tuning_targets.stepping import ModelRun, structural_reason

NO_ROOM_FOR_CHECK = "one epoch of budget left, too few for an A/B check, so no change was asked for"


@dataclass
class Vetted:
    """An Advisor's in-run changes after checking them against the space and the run."""

    changes: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def vet_changes(space: SearchSpace, run: ModelRun, proposed: Sequence[Mapping[str, Any]]) -> Vetted:
    """Keep only changes that may be made inside `run`, repaired to fit the space.

    Unknown and structural knobs are refused with their reason; values are
    clipped or snapped (`SearchSpace.validate`, lenient); a value equal to
    the current one is no change and is noted as such.
    """
    vetted = Vetted()
    raw: dict[str, Any] = {}
    for change in proposed:
        knob, value = str(change.get("knob")), change.get("value")
        spec = space.knobs.get(knob)
        if spec is None or not spec.dynamic or knob not in run.dynamic:  # run.dynamic: this model's own
            reason = f"unknown knob {knob}" if spec is None else structural_reason(knob)
            vetted.refused.append({"knob": knob, "value": value, "reason": reason})
            continue
        raw[knob] = value
        vetted.reasons[knob] = str(change.get("reason") or "")
    checked = space.validate(raw, base=run.config, strict=False)
    vetted.notes += checked.notes
    for knob in raw:
        if checked.config[knob] == run.config[knob]:
            vetted.notes.append(f"{knob} is already {checked.config[knob]!r}; nothing to change")
        else:
            vetted.changes[knob] = checked.config[knob]
    for knob, reason in run.refusals(vetted.changes).items():
        vetted.refused.append({"knob": knob, "value": vetted.changes.pop(knob), "reason": reason})
    vetted.reasons = {k: v for k, v in vetted.reasons.items() if k in vetted.changes}
    return vetted


@dataclass
class Decision:
    """What to do before the next epoch, and where that came from.

    `source`: "evaluator" (judged healthy, Advisor not asked), "advisor",
    "fallback" (an agent failed: no change), "budget" (no room for a check).
    """

    source: str
    changes: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    refused: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    expected_effect: str = ""


@dataclass
class Branches:
    """The outcome of training one epoch with and without a change."""

    record: EpochRecord | None
    kept: bool
    with_change: EpochRecord | None
    without_change: EpochRecord | None
    notes: list[str]


def ab_epoch(run: ModelRun, changes: Mapping[str, Any], direction: str) -> Branches:
    """Train the next epoch with `changes` and, from the same snapshot, without; continue from the better.

    The changed branch is kept only when its metric strictly beats the
    unchanged one's in `direction` (`lgt.direction.is_better`), so a tie keeps
    the unchanged branch. A branch that diverges loses; if both do, the run
    is left failed.
    """
    before = run.snapshot()
    notes = run.apply(dict(changes))
    with_change = run.step()
    if with_change is None:
        notes.append(f"with the change: {run.fail_reason}")
    after_change = run.snapshot() if with_change is not None else None
    run.restore(before)
    without = run.step()
    if without is None:
        notes.append(f"without the change: {run.fail_reason}")
    keep = with_change is not None and (without is None or is_better(with_change.val_metric, without.val_metric,
                                                                      direction))
    if keep:
        assert after_change is not None
        run.restore(after_change)
    return Branches(with_change if keep else without, keep, with_change, without, notes)


@dataclass
class AdaptiveTrial:
    """One trial trained with in-run adaptation.

    `schedule` has one JSON-friendly entry per epoch of the run (see
    `run_adaptive_trial`); `epochs_trained` counts every epoch trained, both
    A/B branches included, which is what the epoch budget counts.
    """

    result: TrialResult
    schedule: list[dict[str, Any]]
    epochs_trained: int
    final_config: dict[str, Any]
    stop_reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result.to_dict(), "schedule": self.schedule, "epochs_trained": self.epochs_trained,
                "final_config": self.final_config, "stop_reason": self.stop_reason}


def run_adaptive_trial(
    target: Target,
    config: dict[str, Any],
    *,
    evaluator: EpochEvaluator,
    advisor: EpochAdvisor,
    seed: int = 0,
    epoch_budget: int | None = None,
    check: bool = True,
    guidance: str | None = None,
    reporter: Reporter | None = None,
    device: torch.device | None = None,
    on_entry: Callable[[dict[str, Any]], None] | None = None,
) -> AdaptiveTrial:
    """Train `config` on `target`, letting the agents adjust dynamic knobs after every epoch.

    Args:
        target, config, seed, device: What to train, as for `Target.run`.
        evaluator, advisor: The agents (`agents.Evaluator`, `agents.Advisor`).
        epoch_budget: Most epochs this trial may train, A/B branches
            included (None: only the config's `epochs` limit it). The run
            stops early, complete with its best epoch so far, when it is spent.
        check: A/B-test every change (see `ab_epoch`); off, changes apply as is.
        guidance: The Optimizer's standing guidance, shown to the Advisor.
        reporter: Receives `on_start(planned epochs)`, one `on_epoch` per kept
            epoch, and `on_end`; raising from `on_epoch` stops the trial.
        on_entry: Receives each schedule entry as soon as its epoch is trained.

    Returns:
        The result and the schedule. Each schedule entry: ``epoch``,
        ``source`` ("start", "evaluator", "advisor", "fallback", "budget"),
        ``changes`` (knob: new value), ``previous`` (knob: old value),
        ``reasons``, ``refused`` ([{knob, value, reason}]), ``notes``,
        ``kept`` (True/False from the A/B check, None when unchecked or
        unchanged), ``val_metric_with`` / ``val_metric_without`` (the epoch's
        validation metric with and without the change, None where not
        trained or diverged), ``val_metric`` (of the epoch the run kept),
        ``values`` (the dynamic knobs in effect for the kept epoch),
        ``verdict`` ({healthy, analysis, correction} or None) and
        ``expected_effect``.
    """
    if epoch_budget is not None and epoch_budget < 1:
        raise ValueError(f"epoch_budget must be at least 1, got {epoch_budget}")
    say = on_entry or (lambda _entry: None)
    reporter = reporter or Reporter()
    metric = {"name": target.metric, "direction": target.direction}
    run = target.start_run(config, seed=seed, device=device)
    budget = math.inf if epoch_budget is None else epoch_budget
    schedule: list[dict[str, Any]] = []
    feedback: list[str] = []
    reporter.on_start(run.planned_epochs)

    record = run.step()
    trained = 1
    schedule.append(_entry(run, Decision("start"), record, kept=None, with_change=None, without_change=record))
    _report(reporter, record)
    say(schedule[-1])
    while not run.done and trained < budget:
        if check and budget - trained < 2:
            decision = Decision("budget", notes=[NO_ROOM_FOR_CHECK])
        else:
            decision = _decide(target, run, schedule, evaluator, advisor, metric, guidance, feedback, check)
        # What the Advisor should hear next time: why its last changes were refused or repaired.
        feedback = ([f"{r['knob']}={r['value']!r} refused: {r['reason']}" for r in decision.refused]
                    + decision.notes) if decision.source == "advisor" else []
        previous = {k: run.config[k] for k in decision.changes}
        if decision.changes and check:
            branches = ab_epoch(run, decision.changes, target.direction)
            trained += 2
            decision.notes += branches.notes
            record = branches.record
            entry = _entry(run, decision, record, kept=branches.kept, with_change=branches.with_change,
                           without_change=branches.without_change)
        else:
            if decision.changes:
                decision.notes += run.apply(decision.changes)
            record = run.step()
            trained += 1
            entry = _entry(run, decision, record, kept=None,
                           with_change=record if decision.changes else None,
                           without_change=None if decision.changes else record)
        entry["previous"] = previous
        schedule.append(entry)
        _report(reporter, record)
        say(entry)
    stop = _stop_reason(run, trained, budget)
    result = run.finish()
    reporter.on_end(result)
    return AdaptiveTrial(result, schedule, trained, dict(run.config), stop)


def run_record(run: ModelRun, schedule: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run as the agents see it (plain data; see `agents.records`)."""
    return {"config": dict(run.config), "history": [r.to_dict() for r in run.history], "epochs": run.planned_epochs,
            "start_loss": run.first_loss, "schedule": [dict(e) for e in schedule],
            "status": "failed" if run.fail_reason else "complete", "fail_reason": run.fail_reason}


def _decide(target: Target, run: ModelRun, schedule: Sequence[Mapping[str, Any]], evaluator: EpochEvaluator,
            advisor: EpochAdvisor, metric: dict[str, str], guidance: str | None, feedback: Sequence[str],
            check: bool) -> Decision:
    """Ask the Evaluator, then (unless it calls the curve healthy) the Advisor; vet what comes back."""
    # The knobs this run's model may change now (a hist_gb run: its learning rate only; a forest: none).
    space = [k for k in target.space.describe() if not k.get("dynamic") or k["name"] in run.dynamic]
    record = run_record(run, schedule)
    facts = diagnose_epoch(record, metric)
    try:
        verdict = evaluator.judge_epoch(space=space, run=record, metric=metric, diagnostics=facts)
    except AgentFailure as exc:
        return Decision("fallback", notes=[f"Evaluator failed ({exc}); no change this epoch"])
    if verdict.diagnosis is not None:  # menu mode: picks, checked and written out by code
        verdict = words.picked_epoch_verdict(verdict, record, facts, metric)
    judged = {"healthy": verdict.healthy, "analysis": verdict.analysis, "correction": verdict.correction}
    if verdict.healthy:
        return Decision("evaluator", verdict=judged)
    try:
        proposal = advisor.adjust(space=space, run=record, metric=metric, verdict=verdict, guidance=guidance,
                                  feedback=list(feedback), diagnostics=facts, checked=check)
    except AgentFailure as exc:
        return Decision("fallback", verdict=judged, notes=[f"Advisor failed ({exc}); no change this epoch"])
    before = dict(run.config)
    vetted = vet_changes(target.space, run, words.picked_epoch_reasons([c.model_dump() for c in proposal.changes],
                                                                       record, facts, metric))
    reasons, replaced = words.checked_epoch_reasons(
        vetted.reasons, {k: (before.get(k), v) for k, v in vetted.changes.items()},
        {k["name"]: dict(k) for k in space}, epoch_flags(facts), run.epoch, metric, words.facts_of(dict(record)))
    return Decision("advisor", vetted.changes, reasons, vetted.refused, vetted.notes + replaced, judged,
                    proposal.expected_effect)


def _entry(run: ModelRun, decision: Decision, record: EpochRecord | None, *, kept: bool | None,
           with_change: EpochRecord | None, without_change: EpochRecord | None) -> dict[str, Any]:
    return {
        "epoch": run.epoch,
        "source": decision.source,
        "changes": dict(decision.changes),
        "previous": {},
        "reasons": dict(decision.reasons),
        "refused": list(decision.refused),
        "notes": list(decision.notes),
        "kept": kept,
        "val_metric_with": with_change.val_metric if with_change is not None else None,
        "val_metric_without": without_change.val_metric if without_change is not None else None,
        "val_metric": record.val_metric if record is not None else None,
        "values": run.dynamic_values(),
        "verdict": decision.verdict,
        "expected_effect": decision.expected_effect,
    }


def _report(reporter: Reporter, record: EpochRecord | None) -> None:
    if record is not None:
        reporter.on_epoch(record)


def _stop_reason(run: ModelRun, trained: int, budget: float) -> str:
    if run.fail_reason is not None:
        return f"failed: {run.fail_reason}"
    if run.epoch >= run.planned_epochs:
        return "planned epochs done"
    if run.done:
        return "early stopping"
    return f"epoch budget spent ({trained} epochs trained)"
