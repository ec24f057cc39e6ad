"""Plain data as compact prompt text.

Every token counts: the embedded model has an 8k context and reads worse
the longer the prompt, so trials become one line each and configurations are
shown as differences from the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.diagnostics import Diagnostics, EpochDiagnostics, diagnose, epoch_flags, flags, summarize_curve
from agents.records import KnobSpec, MetricInfo, TrialRecord, best_trial, default_config, is_better, scored, val
from agents.schemas import EpochVerdict, Verdict

MAX_DESCRIPTION = 90


def task(metric: MetricInfo) -> str:
    """E.g. "maximize val accuracy"."""
    return f"{metric['direction']} val {metric['name']}"


def value(v: object) -> str:
    """A config value, short: floats to 4 significant digits."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def config(values: Mapping[str, Any]) -> str:
    """``k=v, k=v``, or "(none)"."""
    return ", ".join(f"{k}={value(v)}" for k, v in values.items()) or "(none)"


def diff(values: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that differ from ``base``."""
    return {k: v for k, v in values.items() if base.get(k) != v}


def space(knobs: Sequence[KnobSpec]) -> str:
    """One line per knob: name [dimension, type] range: description."""
    lines = []
    for knob in knobs:
        description = str(knob.get("description", ""))
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 3].rstrip() + "..."
        dynamic = ", dynamic" if knob.get("dynamic") else ""
        lines.append(f"- {knob['name']} [{knob['dimension']}, {knob['type']}{dynamic}] {knob['range']}: {description}")
    return "\n".join(lines)


def score(trial: TrialRecord, metric: MetricInfo) -> str:
    """The result in words: "val accuracy 0.934", or why the trial failed."""
    if trial.get("status") == "failed":
        return f"FAILED ({trial.get('fail_reason') or 'no reason given'})"
    metric_value = trial.get("val_metric")
    return f"val {metric['name']} {'n/a' if metric_value is None else value(float(metric_value))}"


def trial(record: TrialRecord, metric: MetricInfo, base: Mapping[str, Any], vs: str | None = "default") -> str:
    """One line: number, source, score, config vs ``base`` (named ``vs``; None: in full), curves, flags."""
    raised = flags(diagnose(record, metric))
    parts = [
        f"#{record.get('number')} ({record.get('source', '?')}) {score(record, metric)}",
        f"config vs {vs}: {config(diff(record.get('config') or {}, base))}"
        if vs
        else f"config: {config(record.get('config') or {})}",
        summarize_curve(list(record.get("history") or []), metric),
    ]
    if raised:
        parts.append("flags: " + ", ".join(raised))
    return " | ".join(parts)


def trials(records: Sequence[TrialRecord], metric: MetricInfo, best_n: int = 3, last_n: int = 3) -> str:
    """The ``best_n`` best completed trials, then the ``last_n`` most recent others."""
    if not records:
        return "(no trials yet)"
    base = default_config(records)
    sign = 1.0 if metric["direction"] == "maximize" else -1.0
    complete = [r for r in records if scored(r)]
    best = sorted(complete, key=lambda r: -sign * val(r))[:best_n]
    recent = [r for r in records if all(r is not b for b in best)][-last_n:]
    lines = ["best:", *(trial(r, metric, base) for r in best)] if best else []
    if recent:
        lines += ["most recent:", *(trial(r, metric, base) for r in recent)]
    return "\n".join(lines)


def best(records: Sequence[TrialRecord], metric: MetricInfo) -> str:
    """The best configuration in full: proposals are applied to it."""
    top = best_trial(records, metric)
    if top is None:
        return f"no completed trial yet; changes apply to the default: {config(default_config(records))}"
    return f"#{top.get('number')} {score(top, metric)}: {config(top.get('config') or {})}"


def gradient(verdict: Verdict | EpochVerdict | None) -> str:
    """The Evaluator's latest textual gradient as a short list."""
    if verdict is None:
        return "(none yet)"
    steps = [f"- {s.knob}: {s.direction} (confidence {s.confidence:.1f}): {s.reason}" for s in verdict.gradient]
    return "\n".join([verdict.analysis, *steps])


def feedback(notes: str | Sequence[str]) -> str:
    """Problems with the previous proposal, or a line saying there were none."""
    notes = [notes] if isinstance(notes, str) else notes
    return "\n".join(f"- {n}" for n in notes) if notes else "(none)"


def knob_names(knobs: Sequence[KnobSpec]) -> str:
    """Names with ranges on one line, for agents that need no descriptions."""
    return "; ".join(f"{k['name']} {k['range']}" for k in knobs)


def changes(record: TrialRecord) -> str:
    """What the trial changed and why, as recorded."""
    made: Mapping[str, Any] = record.get("changes") or {}
    reasons: Mapping[str, str] = record.get("reasons") or {}
    if not made:
        return "(no changes recorded)"
    return "; ".join(f"{k}={value(v)}" + (f" (why: {reasons[k]})" if reasons.get(k) else "") for k, v in made.items())


def diagnostics(d: Diagnostics) -> str:
    """The code-computed facts, in words."""
    parts = []
    if d["best_epoch"] is not None:
        parts.append(f"best epoch {d['best_epoch']} of {d['epochs']}")
    if d["gap_last"] is not None:
        at_best = f", {d['gap_best']:+.3g} at best epoch" if d["gap_best"] is not None else ""
        parts.append(f"val-train loss gap {d['gap_last']:+.3g} at last epoch{at_best}")
    if d["oscillation"] is not None:
        parts.append(f"val loss reverses direction on {d['oscillation']:.0%} of steps")
    if d["seconds_per_epoch"] is not None:
        parts.append(f"{d['seconds_per_epoch']:.2g} s/epoch")
    parts.append("flags: " + (", ".join(flags(d)) or "none"))
    return "; ".join(parts)


def outcomes(records: Sequence[TrialRecord], metric: MetricInfo, limit: int = 15) -> str:
    """Each trial's changes and what they did to the best-so-far, oldest first."""
    lines: list[str] = []
    best_value: float | None = None
    for record in records:
        if not scored(record):
            verdict = score(record, metric)
        elif best_value is None or is_better(val(record), best_value, metric["direction"]):
            delta = "" if best_value is None else f" ({val(record) - best_value:+.3g})"
            verdict, best_value = f"{score(record, metric)}: NEW BEST{delta}", val(record)
        else:
            verdict = f"{score(record, metric)}: no gain ({val(record) - best_value:+.3g} vs best)"
        lines.append(f"#{record.get('number')} ({record.get('source', '?')}) {changes(record)} -> {verdict}")
    omitted = len(lines) - limit
    return (
        "\n".join(([f"({omitted} earlier trials omitted)"] if omitted > 0 else []) + lines[-limit:])
        or "(no trials yet)"
    )


# --- in-run adaptation ------------------------------------------------------------------------------------

MAX_DYNAMIC_DESCRIPTION = 70


def dynamic_knobs(knobs: Sequence[KnobSpec], values: Mapping[str, Any]) -> str:
    """One line per knob that may change inside the run, with its value now."""
    lines = []
    for knob in knobs:
        description = str(knob.get("description", ""))
        if len(description) > MAX_DYNAMIC_DESCRIPTION:
            description = description[: MAX_DYNAMIC_DESCRIPTION - 3].rstrip() + "..."
        lines.append(f"- {knob['name']} = {value(values.get(knob['name']))}, {knob['range']}: {description}")
    return "\n".join(lines)


def epoch_curve(history: Sequence[Mapping[str, Any]], metric: MetricInfo, last_n: int = 6) -> str:
    """The last ``last_n`` epochs, one line each."""
    if not history:
        return "(no epochs yet)"
    lines = [f"({len(history) - last_n} earlier epochs omitted)"] if len(history) > last_n else []
    for h in history[-last_n:]:
        lines.append(
            f"epoch {h.get('epoch')}: train loss {value(h.get('train_loss'))}, val loss {value(h.get('val_loss'))}, "
            f"val {metric['name']} {value(h.get('val_metric'))}, lr {value(h.get('lr'))}"
        )
    return "\n".join(lines)


def epoch_diagnostics(d: EpochDiagnostics) -> str:
    """The code-computed facts about a running curve, in words."""
    parts = []
    if d["best_epoch"] is not None:
        parts.append(f"best epoch {d['best_epoch']} of {d['epochs']}")
    if d["last_metric_change"] is not None:
        parts.append(f"last epoch moved the metric {d['last_metric_change']:+.3g}")
    if d["gap_last"] is not None:
        parts.append(f"val-train loss gap {d['gap_last']:+.3g}")
    parts.append("flags: " + (", ".join(epoch_flags(d)) or "none"))
    return "; ".join(parts)


def schedule(entries: Sequence[Mapping[str, Any]], limit: int = 5) -> str:
    """The changes tried so far in this run and what the A/B check made of them."""
    lines = []
    for entry in entries:
        made: Mapping[str, Any] = entry.get("changes") or {}
        refused = entry.get("refused") or []
        if not made and not refused:
            continue
        text = f"epoch {entry.get('epoch')}: "
        if made:
            text += config(made) + " " + _outcome(entry)
        if refused:
            text += ("; " if made else "") + "refused " + ", ".join(str(r.get("knob")) for r in refused)
        lines.append(text)
    return "\n".join(lines[-limit:]) or "(no changes yet)"


def _outcome(entry: Mapping[str, Any]) -> str:
    kept, with_, without = entry.get("kept"), entry.get("val_metric_with"), entry.get("val_metric_without")
    if kept is None:
        return "(applied without a check)"
    scores = f"val {value(with_)} with vs {value(without)} without"
    return f"({'kept' if kept else 'dropped'}: {scores})"


def epoch_context(knobs: Sequence[KnobSpec], run: Mapping[str, Any], metric: MetricInfo,
                  facts: Mapping[str, Any]) -> dict[str, str]:
    """The prompt values both in-run agents read: where the run is, its knobs, curve and schedule."""
    history = list(run.get("history") or [])
    return {
        "task": task(metric),
        "epoch": str(len(history)),
        "epochs": str(run.get("epochs", "?")),
        "knobs": dynamic_knobs(knobs, run.get("config") or {}),
        "curve": epoch_curve(history, metric),
        "diagnostics": epoch_diagnostics(facts),  # type: ignore[arg-type]
        "schedule": schedule(list(run.get("schedule") or [])),
    }
