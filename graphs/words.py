"""Every LLM text is checked here before the graph records or reuses it.

The checks themselves are `agents.wording`; this module applies them to a
round's candidate, to the Evaluator's verdict and to the Optimizer's
guidance, and decides what a failing text becomes: a reason or an analysis
rendered from the evidence (marked `BY_LGT`), a gradient step dropped, a
guidance version refused (the previous one stays). What was replaced is
recorded with the trial, so the change log says so and report.md counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.records import MetricInfo, TrialRecord
from agents.schemas import ANALYSIS_CHARS, EFFECT_CHARS, GUIDANCE_CHARS, REASON_CHARS
from agents.wording import (
    check_guidance,
    check_reason,
    check_step,
    grounding,
    is_words,
    out_of_range,
    outcome_claims,
    ungrounded,
    unknown_knobs,
)
from graphs.evidence import BY_LGT, Option, best_facts, changes_between, effect_for, fmt, reason_for
from graphs.proposals import Candidate

# What of a trial record code computed (the rest, its reasons and verdict, an LLM wrote: citing them proves nothing).
COMPUTED = ("config", "val_metric", "history", "best_epoch", "seconds", "diagnostics", "curve", "epochs_trained",
            "evidence", "number", "round")


def facts_of(*records: Mapping[str, Any] | None) -> set[float]:
    """The numbers code computed about these trials: what an LLM's text may cite."""
    return grounding([{k: r[k] for k in COMPUTED if k in r} for r in records if r])


def echoes(metric: MetricInfo) -> list[str]:
    """Lines of the prompt a lazy reply repeats instead of saying something."""
    return [f"{metric['direction']} val {metric['name']}", f"val {metric['name']}", "pick a candidate",
            "propose the next change", "judge the newest trial and write the gradient"]


def checked_candidate(candidate: Candidate, base: Mapping[str, Any], support: Mapping[str, str],
                      knobs: Mapping[str, Mapping[str, Any]], option: Option | None, best: TrialRecord | None,
                      metric: MetricInfo, facts: set[float]) -> Candidate:
    """Keep each LLM text of `candidate` that passes the checks; replace the others from the evidence.

    Every change gets the evidence for it (`evidence["support"]`), whether
    or not the LLM gave a reason; a reason the LLM gave that fails a check
    is replaced by one rendered from that evidence, marked `BY_LGT`.
    `facts` are the numbers the agent was shown: a text may cite no other.
    """
    changes = changes_between(base, candidate.config)
    facts = facts | grounding(support, option.to_dict() if option else {}) | facts_of(best)
    said = echoes(metric)
    reasons = {}
    for knob, text in candidate.reasons.items():
        if knob not in changes or not text:
            continue
        problems = check_reason(text, {knob: changes[knob]}, knobs, max_chars=REASON_CHARS, facts=facts,
                                echoes=said)
        if problems:
            candidate.replaced.append(f"reason for {knob}: " + "; ".join(problems))
            text = reason_for(knob, option, support.get(knob, ""))
        reasons[knob] = text
    candidate.reasons = reasons
    if candidate.rationale:
        problems = check_reason(candidate.rationale, changes, knobs, max_chars=REASON_CHARS, facts=facts, echoes=said)
        if problems:
            candidate.replaced.append("the Advisor's reason: " + "; ".join(problems))
            candidate.rationale = ""
    problems = check_reason(candidate.expected_effect, changes, knobs, max_chars=EFFECT_CHARS, facts=facts,
                            echoes=said) if candidate.expected_effect else []
    if problems:
        candidate.replaced.append("expected effect: " + "; ".join(problems))
    if problems or not candidate.expected_effect:
        candidate.expected_effect = effect_for(option, best, metric)
    candidate.evidence = {"support": dict(support), "best": best_facts(best, metric),
                          **({"option": option.to_dict()} if option else {})}
    candidate.changes = {k: new for k, (_, new) in changes.items()}
    return candidate


def checked_verdict(verdict: dict[str, Any], newest: TrialRecord, best: TrialRecord | None,
                    knobs: Mapping[str, Mapping[str, Any]], metric: MetricInfo) -> dict[str, Any]:
    """The verdict with a failing analysis rendered from the numbers, failing steps dropped or their reasons replaced.

    A second step on a knob already in the gradient is dropped too: two
    steps for one knob say nothing a reader can act on (or contradict).
    """
    replaced: list[str] = []
    facts = facts_of(newest, best)
    if best is not None and newest.get("val_metric") is not None and best.get("val_metric") is not None:
        facts.add(float(newest["val_metric"] or 0) - float(best["val_metric"] or 0))
    said = echoes(metric)
    analysis = verdict.get("analysis") or ""
    problems = [*is_words(analysis, max_chars=ANALYSIS_CHARS, knobs=list(knobs), echoes=said),
                *(["copies the prompt or JSON, not sentences"] if any(c in analysis for c in "{}|") else []),
                *unknown_knobs(analysis, list(knobs)), *ungrounded(analysis, facts), *out_of_range(analysis, knobs),
                *outcome_claims(analysis, new_best=bool(verdict.get("is_new_best")), first=best is None)]
    if problems and verdict.get("analysis"):
        replaced.append("analysis: " + "; ".join(problems))
        verdict["analysis"] = f"{BY_LGT} {_facts(newest, best, metric)}"
    steps: list[dict[str, Any]] = []
    for step in verdict.get("gradient") or []:
        wrong, bad_reason = check_step(step["knob"], step["direction"], step["reason"], knobs, max_chars=REASON_CHARS,
                                       facts=facts, echoes=said)
        if any(s["knob"] == step["knob"] for s in steps):
            wrong = [*wrong, f"{step['knob']} already has a step"]
        if wrong:
            replaced.append(f"gradient step {step['knob']} {step['direction']} dropped: " + "; ".join(wrong))
            continue
        if bad_reason:
            replaced.append(f"reason of gradient step {step['knob']}: " + "; ".join(bad_reason))
            step = {**step, "reason": f"{BY_LGT} {_facts(newest, best, metric)}"}
        steps.append(step)
    verdict["gradient"] = steps
    verdict["replaced"] = replaced
    return verdict


def _facts(newest: TrialRecord, best: TrialRecord | None, metric: MetricInfo) -> str:
    """The newest trial against the best before it, from the numbers alone."""
    name = metric["name"]
    if newest.get("status") != "complete":
        return f"the trial failed ({newest.get('fail_reason')}); {best_facts(best, metric)}"
    now = float(newest.get("val_metric") or 0.0)
    then = None if best is None else best.get("val_metric")
    against = "" if then is None else f" against {fmt(then)} for the best before it ({now - then:+.3g})"
    flags = ", ".join(k for k, v in (newest.get("diagnostics") or {}).items() if v is True) or "none"
    return f"val {name} {fmt(now)}{against}; curves: {newest.get('curve', '')}; flags: {flags}"


def checked_epoch_reasons(reasons: Mapping[str, str], changes: Mapping[str, tuple[Any, Any]],
                          knobs: Mapping[str, Mapping[str, Any]], flags: list[str], epoch: int,
                          metric: MetricInfo, facts: set[float]) -> tuple[dict[str, str], list[str]]:
    """The in-run Advisor's reasons, each checked as a between-trial reason is; a failing one is replaced.

    A replaced reason says what code saw in the curve after `epoch` (its
    flags), marked `BY_LGT`; the notes say what was wrong, for the change log.
    """
    kept: dict[str, str] = {}
    notes: list[str] = []
    seen = f"the curve after epoch {epoch} shows {', '.join(flags) if flags else 'no flag'}"
    for knob, (old, new) in changes.items():
        text = reasons.get(knob, "")
        problems = check_reason(text, {knob: (old, new)}, knobs, max_chars=REASON_CHARS,
                                facts=facts | grounding([old, new]), echoes=echoes(metric)) if text else ["no reason"]
        if problems:
            kept[knob] = f"{BY_LGT} {knob} {fmt(old)} -> {fmt(new)}; {seen}"
            notes.append(f"the reason for {knob} was replaced ({problems[0]})")
        else:
            kept[knob] = text
    return kept, notes


def guidance_problems(text: str, knobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Why a new guidance version must be refused (empty: it may stand)."""
    return check_guidance(text, knobs, max_chars=GUIDANCE_CHARS)
