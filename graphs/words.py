"""Every LLM text is checked here before the graph records or reuses it.

The checks themselves are `agents.wording`; this module applies them to a
round's candidate, to the Evaluator's verdict and to the Optimizer's
guidance, and decides what a failing text becomes: a reason or an analysis
rendered from the evidence (marked `BY_LGT`), a gradient step dropped, a
guidance version refused (the previous one stays). What was replaced is
recorded with the trial, so the change log says so and report.md counts it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import diagnoses
from agents.diagnostics import diagnose, epoch_flags, flags
from agents.formatting import value as fmt
from agents.records import MetricInfo, TrialRecord
from agents.schemas import ANALYSIS_CHARS, EFFECT_CHARS, GUIDANCE_CHARS, REASON_CHARS, EpochVerdict
from agents.wording import (
    check_guidance,
    check_reason,
    check_step,
    diagnosis_claims,
    grounding,
    move,
    out_of_range,
    outcome_claims,
    says_nothing,
    ungrounded,
    unknown_knobs,
    word_problems,
)
from graphs.evidence import (
    BY_LGT,
    ORIGINS,
    Option,
    acts_on,
    best_facts,
    effect_for,
    reason_for,
)
from graphs.proposals import Candidate
from lgt.direction import best_first
from lgt.direction import sign as metric_sign
from tuning_targets import config_changes

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
    changes = config_changes(base, candidate.config)
    knobs = _held(knobs, base, candidate.config)
    facts = facts | grounding(support, option.to_dict() if option else {}) | facts_of(best)
    said = echoes(metric)
    if candidate.causes:
        candidate.reasons = _reasons_from_causes(candidate, changes, knobs, best, metric) | {
            k: v for k, v in candidate.reasons.items() if v}
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
    elif candidate.choice.get("mode") == "scored" and (candidate.pick == 0 or candidate.departed):
        candidate.rationale = _picked_why(candidate, option, best, metric, knobs)
    problems = check_reason(candidate.expected_effect, changes, knobs, max_chars=EFFECT_CHARS, facts=facts,
                            echoes=said) if candidate.expected_effect else []
    if problems:
        candidate.replaced.append("expected effect: " + "; ".join(problems))
    if problems or not candidate.expected_effect:
        candidate.expected_effect = effect_for(option, best, metric)
    candidate.evidence = {"support": dict(support), "best": best_facts(best, metric),
                          **({"option": option.to_dict()} if option else {}),
                          **({"choice": dict(candidate.choice)} if candidate.choice else {}),
                          **({"cause": candidate.cause} if candidate.cause else {})}
    candidate.changes = {k: new for k, (_, new) in changes.items()}
    return candidate


def checked_verdict(verdict: dict[str, Any], newest: TrialRecord, best: TrialRecord | None,
                    knobs: Mapping[str, Mapping[str, Any]], metric: MetricInfo) -> dict[str, Any]:
    """The verdict with a failing analysis rendered from the numbers, failing steps dropped or their reasons replaced.

    A second step on a knob already in the gradient is dropped too: two
    steps for one knob say nothing a reader can act on (or contradict).
    """
    knobs = _held(knobs, newest.get("config") or {})
    if verdict.get("outcome") is not None or verdict.get("diagnosis") is not None:
        return _picked_verdict(verdict, newest, best, knobs, metric)
    replaced: list[str] = []
    facts = facts_of(newest, best)
    if best is not None and newest.get("val_metric") is not None and best.get("val_metric") is not None:
        facts.add(float(newest["val_metric"] or 0) - float(best["val_metric"] or 0))
    said = echoes(metric)
    analysis = verdict.get("analysis") or ""
    raised = flags(newest.get("diagnostics") or diagnose(newest, metric))  # type: ignore[arg-type]
    problems = [*word_problems(analysis, max_chars=ANALYSIS_CHARS, knobs=list(knobs), echoes=said),
                *says_nothing(analysis, list(knobs)), *diagnosis_claims(analysis, raised),
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


def _held(knobs: Mapping[str, Mapping[str, Any]], *configs: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The knobs these configs hold: on a conditional space a text may speak only of its own models' knobs.

    ("raise max_leaf_nodes" says nothing about an MLP.) A config that holds
    none of the knobs (no config known) leaves the space as it is.
    """
    names = {name for config in configs for name in config}
    held = {name: spec for name, spec in knobs.items() if name in names}
    return held if held else dict(knobs)


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


# --- menu mode: the agents picked, code checks each pick and writes the sentence ------------------------------------

def problems_of(trial: Mapping[str, Any] | None, metric: MetricInfo) -> tuple[str, ...]:
    """The curve problems code found in `trial` (its raised flags but "failed"): what a pick may act on."""
    if not trial:
        return ()
    facts = trial.get("diagnostics") or diagnose(trial, metric)
    return tuple(d for d in diagnoses.CURVES if d in flags(facts))


def _evidence_of(diagnosis: str, trial: Mapping[str, Any], metric: MetricInfo,
                 best: Mapping[str, Any] | None = None) -> str:
    facts = trial.get("diagnostics") or diagnose(trial, metric)
    then = best.get("val_metric") if best else None
    return diagnoses.evidence(diagnosis, facts, list(trial.get("history") or []), metric,
                              value=trial.get("val_metric"), best=float(then) if then is not None else None,
                              fail_reason=trial.get("fail_reason"))


def _picked_why(candidate: Candidate, option: Option | None, best: TrialRecord | None, metric: MetricInfo,
                knobs: Mapping[str, Mapping[str, Any]]) -> str:
    """The Advisor's pick in words: which candidate, where it came from, and the best trial's problem it acts on.

    A cause code cannot back (the best trial does not show it, or none of
    the candidate's changes is the playbook's remedy for it) is refused,
    noted in `replaced`, and left out.
    """
    origin = ORIGINS.get(option.origin, option.origin) if option else "a candidate"
    rating = f"; {option.tpe_rating()}" if option and option.rank else ""
    text = f"The Advisor picked candidate {candidate.pick}, {origin}{rating}"
    cause = candidate.cause
    if cause and best is not None:
        acting = acts_on(option, [cause], knobs).get(cause) if option else None
        if cause not in problems_of(best, metric):
            candidate.replaced.append(f"the Advisor's cause {cause!r}: the best trial's curves do not show it")
        elif not acting:
            candidate.replaced.append(f"the Advisor's cause {cause!r}: none of the candidate's changes is a remedy "
                                      f"for it")
        else:
            opposed = acts_on(option, [cause], knobs, against=True).get(cause) if option else None
            also = f" It also moves {', '.join(opposed[:2])}, the other way." if opposed else ""
            return (f"{text}, against the best trial's {diagnoses.noun(cause)} ({_evidence_of(cause, best, metric)}): "
                    f"it moves {', '.join(acting[:2])}.{also}")
    moves = [f"{k} {fmt(a)} -> {fmt(b)}" for k, (a, b) in (option.changes if option else {}).items()]
    if not moves:
        return f"{text}."
    more = f" and {len(moves) - 3} more" if len(moves) > 3 else ""
    return f"{text}: it moves {', '.join(moves[:3])}{more}."


def _reasons_from_causes(candidate: Candidate, changes: Mapping[str, tuple[Any, Any]],
                         knobs: Mapping[str, Mapping[str, Any]], best: TrialRecord | None,
                         metric: MetricInfo) -> dict[str, str]:
    """Menu mode's free proposals: each change's reason written from the problem the Advisor said it acts on."""
    reasons: dict[str, str] = {}
    found = problems_of(best, metric)
    for knob, cause in candidate.causes.items():
        if knob not in changes:
            continue
        old, new = changes[knob]
        way = move(old, new, knobs.get(knob, {}).get("choices") if knobs.get(knob, {}).get("type") == "categorical"
                   else None)
        wanted = diagnoses.remedy(cause, knob)
        if best is None or cause not in found:
            candidate.replaced.append(f"the cause of {knob}: {cause!r} is not what the best trial's curves show")
        elif wanted is not None and way is not None and {"increase": "up", "decrease": "down"}[wanted] != way:
            candidate.replaced.append(f"the cause of {knob}: to move it {way} is no remedy for {cause}")
        else:
            reasons[knob] = (f"the Advisor's change against the best trial's {diagnoses.noun(cause)} "
                             f"({_evidence_of(cause, best, metric)}): {knob} {fmt(old)} -> {fmt(new)}")
    return reasons


def _picked_verdict(verdict: dict[str, Any], newest: TrialRecord, best: TrialRecord | None,
                    knobs: Mapping[str, Mapping[str, Any]], metric: MetricInfo) -> dict[str, Any]:
    """The Evaluator's picks checked against the code-computed flags, and written out.

    A wrong outcome or a diagnosis the flags contradict is replaced by
    code's own (noted, and marked in the sentence); a step whose cause the
    numbers do not show, or whose direction the playbook says is the wrong
    way for that cause, is dropped.
    """
    replaced: list[str] = []
    facts = newest.get("diagnostics") or diagnose(newest, metric)
    scored = newest.get("status") == "complete" and newest.get("val_metric") is not None
    new_best = bool(verdict.get("is_new_best"))
    found = diagnoses.supported(facts, new_best=new_best, scored=scored)  # type: ignore[arg-type]
    outcome, by_evaluator = found[0], True
    if verdict.get("outcome") not in (None, outcome):
        replaced.append(f"outcome: the Evaluator picked {verdict['outcome']!r}, but "
                        f"{diagnoses.contradiction(str(verdict['outcome']), facts, new_best=new_best, scored=scored)}")  # type: ignore[arg-type]
        by_evaluator = False
    diagnosis = str(verdict.get("diagnosis") or (found[1] if len(found) > 1 else "healthy"))
    problem = diagnoses.contradiction(diagnosis, facts, new_best=new_best, scored=scored)  # type: ignore[arg-type]
    diagnosed_by = "the Evaluator's diagnosis"
    if problem is not None or diagnosis in diagnoses.OUTCOMES:
        replaced.append(f"diagnosis: {problem or diagnosis + ' is an outcome, not a diagnosis'}")
        diagnosis, diagnosed_by = (found[1] if len(found) > 1 else "healthy"), f"{BY_LGT} diagnosis"
    read = (f"The Evaluator reads {outcome}" if by_evaluator else
            f"{outcome.capitalize()} (computed; the Evaluator read {verdict['outcome']})") + \
        f": {_evidence_of(outcome, newest, metric, best)}"
    parts = [read] if diagnosis == "healthy" and not scored else \
        [read, f"{diagnosed_by}: {diagnosis} ({_evidence_of(diagnosis, newest, metric)})"]
    verdict["analysis"] = "; ".join(parts) + "."
    verdict["outcome"], verdict["diagnosis"] = outcome, diagnosis
    moved = _moves(newest, best, knobs)
    causes = [d for d in found if d != "healthy"]
    steps: list[dict[str, Any]] = []
    for step in verdict.get("gradient") or []:
        knob, direction, cause = str(step["knob"]), str(step["direction"]), str(step.get("cause") or "")
        wrong, _ = check_step(knob, direction, "", knobs, max_chars=REASON_CHARS)
        way = _way(knob, direction, newest, knobs)
        why = diagnoses.step_problem(knob, way or direction, cause, causes, moved) if not wrong else None
        if any(s["knob"] == knob for s in steps):
            wrong = [*wrong, f"{knob} already has a step"]
        if wrong or why:
            replaced.append(f"gradient step {knob} {direction} ({cause}) dropped: " + "; ".join([*wrong, *(
                [why] if why else [])]))
            continue
        if cause in ("improved", "no gain"):
            turn = "and improved" if cause == "improved" else "with no gain"
            reason = (f"the trial moved {knob} {moved[knob]} {turn} "
                      f"({_evidence_of(cause, newest, metric, best)})")
        else:
            reason = f"against its {diagnoses.noun(cause)} ({_evidence_of(cause, newest, metric)})"
        steps.append({**step, "reason": reason})
    verdict["gradient"] = steps
    verdict["replaced"] = replaced
    return verdict


def _moves(newest: TrialRecord, best: TrialRecord | None, knobs: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Which way the newest trial moved each knob it changed, from the best config before it."""
    base = (best or {}).get("config") or {}
    out = {}
    for knob, new in (newest.get("changes") or {}).items():
        spec = knobs.get(knob, {})
        way = move(base.get(knob), new, spec.get("choices") if spec.get("type") == "categorical" else None)
        if way:
            out[knob] = way
    return out


def _way(knob: str, direction: str, trial: TrialRecord, knobs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """A switch on an ordered categorical knob as the move it makes ("increase" / "decrease"), else the direction."""
    spec = knobs.get(knob, {})
    if not direction.startswith("switch to ") or not spec.get("ordered"):
        return direction if direction in ("increase", "decrease") else None
    target = direction.removeprefix("switch to ").strip().strip('"')
    now = (trial.get("config") or {}).get(knob)
    way = move(now, next((c for c in spec.get("choices") or () if str(c).lower() == target.lower()), None),
               spec.get("choices"))
    return {"up": "increase", "down": "decrease"}.get(way or "")


def checked_rules(rules: list[dict[str, Any]], trials: list[TrialRecord], knobs: Mapping[str, Mapping[str, Any]],
                  metric: MetricInfo) -> tuple[list[str], list[str]]:
    """The Optimizer's picked rules written out, each one the record backs; and why the others were dropped.

    prefer KNOB DIRECTION when PROBLEM: the problem was seen in some trial
    and the playbook does not say the opposite; avoid KNOB as in TRIAL: that
    trial failed or scored below the median; keep KNOB as in TRIAL: that
    trial is among the three best.
    """
    by_number = {int(t["number"]): t for t in trials if "number" in t}
    scored = [t for t in trials if t.get("status") == "complete" and t.get("val_metric") is not None]
    sign = metric_sign(metric["direction"])
    ranked = best_first(scored, metric["direction"], lambda t: float(t["val_metric"] or 0))
    values = sorted(float(t["val_metric"] or 0) for t in scored)
    median = values[len(values) // 2] if values else None
    texts: list[str] = []
    dropped: list[str] = []
    for rule in rules:
        shape, knob = rule.get("shape"), str(rule.get("knob"))
        if knob not in knobs:
            dropped.append(f"{shape} {knob}: not a knob")
            continue
        if shape == "prefer":
            when, direction = str(rule.get("when")), str(rule.get("direction"))
            seen = [int(t["number"]) for t in trials if when in problems_of(t, metric) and "number" in t]
            wanted = diagnoses.remedy(when, knob)
            if not seen:
                dropped.append(f"prefer {knob} {direction} when {when}: no trial showed {when}")
            elif wanted is not None and wanted != direction:
                dropped.append(f"prefer {knob} {direction} when {when}: the remedy for {when} is to {wanted} it")
            else:
                texts.append(f"{diagnoses.WORDS.get(direction, direction)} {knob} when {when} shows (as in "
                             f"{', '.join(f'#{n}' for n in seen[-3:])})")
            continue
        trial = by_number.get(int(rule.get("trial", -1)))
        value = (trial or {}).get("config", {}).get(knob)
        if trial is None or value is None:
            dropped.append(f"{shape} {knob} as in trial {rule.get('trial')}: no such trial sets {knob}")
        elif shape == "avoid":
            bad = trial.get("status") != "complete" or (median is not None and sign * (
                float(trial.get("val_metric") or 0) - median) < 0)
            if not bad:
                dropped.append(f"avoid {knob} as in #{trial['number']}: that trial did not fail or score below "
                               f"the median")
            else:
                how = "failed" if trial.get("status") != "complete" else \
                    f"scored {fmt(trial.get('val_metric'))}, under the median {fmt(median)}"
                texts.append(f"avoid {knob} {fmt(value)} (#{trial['number']} with it {how})")
        elif shape == "keep":
            if trial not in ranked[:3]:
                dropped.append(f"keep {knob} as in #{trial['number']}: that trial is not among the three best")
            else:
                texts.append(f"keep {knob} near {fmt(value)} (as in #{trial['number']}, val {metric['name']} "
                             f"{fmt(trial.get('val_metric'))}, among the three best)")
    return texts, dropped


def picked_epoch_verdict(verdict: EpochVerdict, record: Mapping[str, Any], facts: Mapping[str, Any],
                         metric: MetricInfo) -> EpochVerdict:
    """Menu mode inside a run: the Evaluator's diagnosis and steps checked against the curve's flags, written out."""
    raised = epoch_flags(facts)  # type: ignore[arg-type]
    history = list(record.get("history") or [])
    notes: list[str] = []
    diagnosis = verdict.diagnosis or "healthy"
    if (diagnosis == "healthy" and raised and verdict.healthy is False) or (diagnosis != "healthy"
                                                                         and diagnosis not in raised):
        notes.append(f"the Evaluator's diagnosis {diagnosis!r} is not what the flags show ({', '.join(raised) or 'none'})")
        diagnosis = raised[0] if raised else "healthy"
    evidence = diagnoses.evidence(diagnosis, {**facts, "start_loss": record.get("start_loss")}, history, metric)
    who = "The Evaluator reads" if not notes else f"{BY_LGT} the flags read"
    steps = []
    for step in verdict.gradient:
        cause = step.cause or ""
        wanted = diagnoses.remedy(cause, step.knob)
        if cause not in raised or (wanted is not None and step.direction in ("increase", "decrease")
                                   and wanted != step.direction):
            notes.append(f"gradient step {step.knob} {step.direction} ({cause}) dropped: not backed by the flags "
                         f"or the wrong way for {cause}")
            continue
        reason = f"against the {diagnoses.noun(cause)} ({diagnoses.evidence(cause, facts, history, metric)})"
        steps.append(step.model_copy(update={"reason": reason}))
    correction = "; ".join(filter(None, [verdict.correction, *notes])) or None
    return verdict.model_copy(update={"analysis": f"{who} the curve as {diagnosis}: {evidence}.", "gradient": steps,
                                      "diagnosis": diagnosis, "correction": correction})


def picked_epoch_reasons(changes: Sequence[Mapping[str, Any]], record: Mapping[str, Any], facts: Mapping[str, Any],
                         metric: MetricInfo) -> list[dict[str, Any]]:
    """Menu mode inside a run: each change's reason written from the flag it acts on (empty when not backed)."""
    raised = epoch_flags(facts)  # type: ignore[arg-type]
    history = list(record.get("history") or [])
    out = []
    for change in changes:
        cause = str(change.get("cause") or "")
        reason = str(change.get("reason") or "")
        if not reason and cause in raised:
            reason = (f"the Advisor's change against the {diagnoses.noun(cause)} "
                      f"({diagnoses.evidence(cause, facts, history, metric)})")
        out.append({**change, "reason": reason})
    return out
