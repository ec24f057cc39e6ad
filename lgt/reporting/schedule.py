"""The schedule the agents wrote inside a run, in words: one change-log line per epoch.

Input is the JSON-friendly schedule stored with each trial of an
`--adapt epoch` run (see `graphs.adaptation.run_adaptive_trial`), so the
change log, the console and any report say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lgt.reporting.text import line, value


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a (diverged)"


def _score(value: Any, metric: str) -> str:
    return f"val {metric} {_number(value)}"


def describe_entry(entry: Mapping[str, Any], metric: str) -> str:
    """One epoch of the schedule in plain English: what changed, why, and what the A/B check did."""
    epoch, source = entry.get("epoch"), entry.get("source")
    changes: Mapping[str, Any] = entry.get("changes") or {}
    previous: Mapping[str, Any] = entry.get("previous") or {}
    reasons: Mapping[str, str] = entry.get("reasons") or {}
    verdict: Mapping[str, Any] = entry.get("verdict") or {}
    parts: list[str] = []
    if source == "start":
        values = ", ".join(f"{k}={value(v)}" for k, v in (entry.get("values") or {}).items())
        parts.append(f"Epoch {epoch}: started with the trial's config ({values}); {_score(entry.get('val_metric'), metric)}.")
    elif changes:
        what = "; ".join(
            f"{k} {value(previous[k])} -> {value(v)}" if k in previous else f"{k} -> {value(v)}" for k, v in changes.items()
        )
        given = {k: str(reasons[k]).strip().rstrip(".") for k in changes if reasons.get(k)}
        why = next(iter(given.values())) if len(changes) == 1 and given else "; ".join(f"{k}: {r}" for k, r in given.items())
        parts.append(f"Epoch {epoch}: {what}" + (f", because {why}" if why else "") + ".")
        parts.append(_check_text(entry, metric))
    else:
        parts.append(f"Epoch {epoch}: no change ({_why_unchanged(entry, verdict)}); "
                     f"{_score(entry.get('val_metric'), metric)}.")
    for refused in entry.get("refused") or []:
        parts.append(f"Refused {refused.get('knob')}={value(refused.get('value'))}: {refused.get('reason')}.")
    if verdict.get("correction"):
        parts.append(f"(Checked in code: {verdict['correction']}.)")
    return " ".join(parts)


def _why_unchanged(entry: Mapping[str, Any], verdict: Mapping[str, Any]) -> str:
    source = entry.get("source")
    if source == "evaluator":
        analysis = str(verdict.get("analysis") or "").strip().rstrip(".")
        return "the Evaluator judged the curve healthy" + (f": {analysis}" if analysis else "")
    if source == "advisor":
        if entry.get("refused"):
            return "the Advisor's changes were refused"
        if entry.get("notes"):
            return "the Advisor's changes had no effect: " + "; ".join(entry["notes"])
        effect = str(entry.get("expected_effect") or "").strip().rstrip(".")
        return "the Advisor proposed none" + (f": {effect}" if effect else "")
    return "; ".join(entry.get("notes") or []) or "nothing proposed"


def _check_text(entry: Mapping[str, Any], metric: str) -> str:
    kept = entry.get("kept")
    with_, without = entry.get("val_metric_with"), entry.get("val_metric_without")
    if kept is None:
        return f"Applied without an A/B check; {_score(with_, metric)}."
    scores = f"val {metric} {_number(with_)} with the change, {_number(without)} without"
    if kept:
        return f"A/B check: kept ({scores})."
    return f"A/B check: not kept ({scores}); the run went on without it."


def schedule_lines(schedule: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """The whole schedule as change-log bullet lines, one per epoch."""
    return [f"- {line(describe_entry(entry, metric))}" for entry in schedule]
