"""Plain data as compact prompt text.

Reading the prompt is most of an LLM call's time on a small local model, so
every prompt is laid out static-first: what stays the same for a whole run
(the role, the goal, the data, the search space) comes first, so a server's
prompt cache reads it once per run; what changes (the trials, the gradient,
the guidance) comes last and is bounded: the best few and the last few
trials, one short line each, so a prompt does not grow with the budget.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agents.diagnostics import Diagnostics, EpochDiagnostics, diagnose, epoch_flags, flags, summarize_curve
from agents.formatting import value
from agents.records import KnobSpec, MetricInfo, TrialRecord, best_trial, default_config, scored, val
from agents.schemas import EpochVerdict, Verdict
from lgt.direction import best_first, is_better

MAX_DESCRIPTION = 80
# Names that come from a data set (a CSV's columns) are quoted, cut and few: data, never instructions.
MAX_NAME = 24
MAX_NAMES = 12


def task(metric: MetricInfo) -> str:
    """E.g. "maximize val accuracy"."""
    return f"{metric['direction']} val {metric['name']}"


def config(values: Mapping[str, Any]) -> str:
    """``k=v, k=v``, or "(none)"."""
    return ", ".join(f"{k}={value(v)}" for k, v in values.items()) or "(none)"


def diff(values: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that differ from ``base``."""
    return {k: v for k, v in values.items() if base.get(k) != v}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def space(knobs: Sequence[KnobSpec]) -> str:
    """One line per knob: name (dimension, type[, dynamic]) range: description."""
    lines = []
    for knob in knobs:
        dynamic = ", dynamic" if knob.get("dynamic") else ""
        description = _cut(str(knob.get("description", "")), MAX_DESCRIPTION)
        lines.append(f"- {knob['name']} ({knob['dimension']}, {knob['type']}{dynamic}) {knob['range']}: {description}")
    return "\n".join(lines)


def knob_names(knobs: Sequence[KnobSpec]) -> str:
    """Names with ranges on one line, for agents that need no descriptions."""
    return "; ".join(f"{k['name']} {k['range']}" for k in knobs)


def names(found: Sequence[object]) -> str:
    """Names read from a data set, as quoted data: each cut short, at most a dozen listed."""
    shown = [json.dumps(_cut(str(n), MAX_NAME)) for n in list(found)[:MAX_NAMES]]
    more = len(found) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def data(profile: Mapping[str, Any] | None) -> str:
    """The data profile computed in code (`tuning_targets.Target.data_profile`), a line per fact."""
    if not profile:
        return "(not described)"
    lines = []
    rows = profile.get("rows") or {}
    if rows:
        lines.append(f"- rows: {rows.get('train', 0):,} train / {rows.get('val', 0):,} validation / "
                     f"{rows.get('test', 0):,} test")
    features, image = profile.get("features") or {}, profile.get("image")
    if image:
        lines.append(f"- images: {image['height']}x{image['width']} pixels, {image['channels']} channel(s)")
    elif features:
        lines.append(f"- features: {features.get('numeric', 0)} numeric, {features.get('categorical', 0)} categorical")
    if profile.get("missing_share") is not None:
        share = float(profile["missing_share"])
        lines.append(f"- missing values: {'none' if share == 0 else f'{share:.1%} of feature cells'}")
    classes, spread = profile.get("classes"), profile.get("target")
    if classes:
        lines.append(f"- classes: {classes['count']}, smallest {classes['smallest_share']:.1%} of rows, "
                     f"largest {classes['largest_share']:.1%}")
    if spread:
        lines.append(f"- target: mean {value(spread['mean'])}, std {value(spread['std'])}, "
                     f"range {value(spread['min'])} to {value(spread['max'])}")
    if profile.get("columns"):
        lines.append(f"- columns (names from the data): {names(profile['columns'])}")
    return "\n".join(lines) or "(not described)"


def score(trial: TrialRecord, metric: MetricInfo) -> str:
    """The result in words: "val accuracy 0.934", or why the trial failed."""
    if trial.get("status") == "failed":
        return f"FAILED ({_cut(str(trial.get('fail_reason') or 'no reason given'), 80)})"
    metric_value = trial.get("val_metric")
    return f"val {metric['name']} {'n/a' if metric_value is None else value(float(metric_value))}"


def row(record: TrialRecord, metric: MetricInfo, base: Mapping[str, Any]) -> str:
    """One trial in one short line: number, source, score, config vs ``base``, raised flags."""
    raised = flags(diagnose(record, metric))
    return (f"#{record.get('number')} ({record.get('source', '?')}) {score(record, metric)} | "
            f"{config(diff(record.get('config') or {}, base))}" + (f" | {', '.join(raised)}" if raised else ""))


def trial(record: TrialRecord, metric: MetricInfo, base: Mapping[str, Any]) -> str:
    """One trial in full: its line, then its curves."""
    return f"{row(record, metric, base)}\n  curves: {summarize_curve(list(record.get('history') or []), metric)}"


def trials(records: Sequence[TrialRecord], metric: MetricInfo, best_n: int = 3, last_n: int = 2) -> str:
    """The ``best_n`` best completed trials, then the ``last_n`` most recent others; one line each."""
    if not records:
        return "(no trials yet)"
    base = default_config(records)
    best = best_first([r for r in records if scored(r)], metric["direction"], val)[:best_n]
    recent = [r for r in records if all(r is not b for b in best)][-last_n:]
    shown = len(best) + len(recent)
    lines = ["best:", *(row(r, metric, base) for r in best)] if best else []
    if recent:
        lines += ["latest:", *(row(r, metric, base) for r in recent)]
    if shown < len(records):
        lines.append(f"({len(records) - shown} other trials not shown)")
    return "\n".join(lines)


def best(records: Sequence[TrialRecord], metric: MetricInfo, brief: bool = False) -> str:
    """The best configuration in full (proposals are applied to it), or ``brief``: only where it leaves the default."""
    top = best_trial(records, metric)
    if top is None:
        return f"no completed trial yet; changes apply to the default: {config(default_config(records))}"
    if brief:
        changed = diff(top.get("config") or {}, default_config(records))
        return f"#{top.get('number')} {score(top, metric)}: {config(changed)}" + (", the rest default" if changed
                                                                                else " (the default)")
    return f"#{top.get('number')} {score(top, metric)}: {config(top.get('config') or {})}"


def gradient(verdict: Verdict | EpochVerdict | None) -> str:
    """The Evaluator's latest textual gradient as a short list."""
    if verdict is None:
        return "(none yet)"
    steps = [f"- {s.knob}: {s.direction}" + ("" if s.confidence is None else f" (confidence {s.confidence:.1f})")
             + f": {s.reason}" for s in verdict.gradient]
    return "\n".join([verdict.analysis, *steps])


def picks(verdict: Verdict | None) -> str:
    """Menu mode: the Evaluator's latest picks in a few words ("no gain, plateau; steps: raise epochs")."""
    if verdict is None:
        return "(none yet)"
    steps = ", ".join(f"{_verbs.get(s.direction, s.direction)} {s.knob}" for s in verdict.gradient)
    head = ", ".join(p for p in (verdict.outcome, verdict.diagnosis) if p) or "judged"
    return head + (f"; steps: {steps}" if steps else "")


_verbs = {"increase": "raise", "decrease": "lower"}


def changed(record: TrialRecord, base: Mapping[str, Any], most: int = 4) -> str:
    """The knobs a trial changed from `base`, by name only ("lr, epochs and 3 more"): menu mode's short prompts."""
    names = list(diff(record.get("config") or {}, base))
    if not names:
        return "nothing changed"
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def brief(trial: TrialRecord | None, metric: MetricInfo) -> str:
    """A trial as a menu-mode prompt needs it: number, score, raised flags (no config)."""
    if trial is None:
        return "(none: this is the first completed trial)"
    raised = flags(diagnose(trial, metric))
    return f"#{trial.get('number')} {score(trial, metric)}; its curves: {', '.join(raised) or 'no problem flagged'}"


def feedback(notes: str | Sequence[str]) -> str:
    """Problems with the previous proposal, or a line saying there were none."""
    notes = [notes] if isinstance(notes, str) else notes
    return "\n".join(f"- {n}" for n in notes) if notes else "(none)"


def changes(record: TrialRecord, most: int | None = None) -> str:
    """What the trial changed and why, as recorded; with `most`, that many changes and no reasons."""
    made: Mapping[str, Any] = record.get("changes") or {}
    reasons: Mapping[str, str] = record.get("reasons") or {}
    if not made:
        return "(no changes recorded)"
    if most is not None:
        shown = "; ".join(f"{k}={value(v)}" for k, v in list(made.items())[:most])
        return shown + (f" and {len(made) - most} more" if len(made) > most else "")
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
    parts.append("flags: " + (", ".join(flags(d)) or "none"))
    return "; ".join(parts)


def outcomes(records: Sequence[TrialRecord], metric: MetricInfo, limit: int = 8, most: int | None = None) -> str:
    """Each trial's changes and what they did to the best-so-far, oldest first; the last ``limit``.

    `most`: at most that many changes per trial, without their reasons (menu mode's short prompts).
    """
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
        lines.append(f"#{record.get('number')} ({record.get('source', '?')}) {changes(record, most)} -> {verdict}")
    omitted = len(lines) - limit
    return (
        "\n".join(([f"({omitted} earlier trials omitted)"] if omitted > 0 else []) + lines[-limit:])
        or "(no trials yet)"
    )


# --- in-run adaptation ------------------------------------------------------------------------------------

MAX_DYNAMIC_DESCRIPTION = 70


def dynamic_knobs(knobs: Sequence[KnobSpec]) -> str:
    """One line per knob that may change inside the run (static: the values now are in the curve part)."""
    return "\n".join(f"- {k['name']} {k['range']}: {_cut(str(k.get('description', '')), MAX_DYNAMIC_DESCRIPTION)}"
                     for k in knobs)


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
    """The prompt values both in-run agents read: the knobs (static), then where the run is now."""
    history = list(run.get("history") or [])
    now = run.get("config") or {}
    return {
        "task": task(metric),
        "knobs": dynamic_knobs(knobs),
        "values": config({k["name"]: now.get(k["name"]) for k in knobs}),
        "epoch": str(len(history)),
        "epochs": str(run.get("epochs", "?")),
        "curve": epoch_curve(history, metric),
        "diagnostics": epoch_diagnostics(facts),  # type: ignore[arg-type]
        "schedule": schedule(list(run.get("schedule") or [])),
    }
