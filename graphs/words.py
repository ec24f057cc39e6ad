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
from agents.wording import check_guidance, check_reason, check_step, is_words, unknown_knobs
from graphs.evidence import BY_LGT, Option, best_facts, changes_between, effect_for, fmt, reason_for
from graphs.proposals import Candidate


def checked_candidate(candidate: Candidate, base: Mapping[str, Any], support: Mapping[str, str],
                      knobs: Mapping[str, Mapping[str, Any]], option: Option | None, best: TrialRecord | None,
                      metric: MetricInfo) -> Candidate:
    """Keep each LLM text of `candidate` that passes the checks; replace the others from the evidence.

    Every change gets the evidence for it (`evidence["support"]`), whether
    or not the LLM gave a reason; a reason the LLM gave that fails a check
    is replaced by one rendered from that evidence, marked `BY_LGT`.
    """
    changes = changes_between(base, candidate.config)
    reasons = {}
    for knob, text in candidate.reasons.items():
        if knob not in changes or not text:
            continue
        problems = check_reason(text, {knob: changes[knob]}, knobs, max_chars=REASON_CHARS)
        if problems:
            candidate.replaced.append(f"reason for {knob}: " + "; ".join(problems))
            text = reason_for(knob, option, support.get(knob, ""))
        reasons[knob] = text
    candidate.reasons = reasons
    if candidate.rationale:
        problems = check_reason(candidate.rationale, changes, knobs, max_chars=REASON_CHARS)
        if problems:
            candidate.replaced.append("the Advisor's reason: " + "; ".join(problems))
            candidate.rationale = ""
    problems = check_reason(candidate.expected_effect, changes, knobs, max_chars=EFFECT_CHARS) \
        if candidate.expected_effect else []
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
    """The verdict with a failing analysis rendered from the numbers, failing steps dropped or their reasons replaced."""
    replaced: list[str] = []
    problems = [*is_words(verdict.get("analysis") or "", max_chars=ANALYSIS_CHARS),
                *unknown_knobs(verdict.get("analysis") or "", list(knobs))]
    if problems and verdict.get("analysis"):
        replaced.append("analysis: " + "; ".join(problems))
        verdict["analysis"] = f"{BY_LGT} {_facts(newest, best, metric)}"
    steps = []
    for step in verdict.get("gradient") or []:
        wrong, bad_reason = check_step(step["knob"], step["direction"], step["reason"], knobs, max_chars=REASON_CHARS)
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


def guidance_problems(text: str, knobs: Mapping[str, Any]) -> list[str]:
    """Why a new guidance version must be refused (empty: it may stand)."""
    return check_guidance(text, list(knobs), max_chars=GUIDANCE_CHARS)
