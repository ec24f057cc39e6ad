"""The change log: an engineer's notebook of an LGT run, rendered from its study alone.

Everything it says is stored with the run: each trial's proposal, reasons,
repairs, result, verdict and in-run schedule as trial attrs; the
Optimizer's guidance versions and the verdicts of parallel rounds as study
attrs. So the run rewrites it after every round from the storage, and
`lgt report` rebuilds the same file, byte for byte, later or elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from agents import summarize_curve
from graphs.evidence import ordinal, origin_words
from lgt.direction import best_of, is_better
from lgt.reporting import plots
from lgt.reporting.schedule import schedule_lines
from lgt.reporting.store import Run
from lgt.reporting.summary import status
from lgt.reporting.text import cell, line, md, value
from lgt.reporting.writing import write_whole
from lgt.vocabulary import is_source

CHANGELOG = "changelog.md"
Record = dict[str, Any]


def schedule_plot_name(number: int) -> str:
    return f"schedule-trial{number}.png"


def records(run: Run) -> list[Record]:
    """Each trial as the change log reads it, in the order the rounds ran."""
    metric = {"name": str(run.attrs.get("metric", "metric")), "direction": run.direction}
    verdicts = {int(v["trial"]): v for k, v in run.attrs.items()
                if k.startswith("verdict_round_") and isinstance(v, dict) and "trial" in v}
    out = []
    for trial in sorted(run.trials, key=lambda t: (int(t.user_attrs.get("round") or 0),
                                                   int(t.user_attrs.get("slot") or 0), t.number)):
        out.append(_record(trial, metric, verdicts.get(trial.number)))
    return out


def _record(trial: FrozenTrial, metric: Mapping[str, str], round_verdict: Mapping[str, Any] | None) -> Record:
    attrs = trial.user_attrs
    history = list(attrs.get("history") or [])
    verdict = attrs.get("verdict") or ({k: v for k, v in round_verdict.items() if k != "trial"}
                                       if round_verdict else None)
    return {
        "number": trial.number, "round": attrs.get("round"), "source": attrs.get("source", "?"),
        "config": attrs.get("config") or {}, "changes": attrs.get("proposal") or {},
        "reasons": attrs.get("reasons") or {}, "expected_effect": attrs.get("expected_effect") or "",
        "notes": list(attrs.get("notes") or []),
        "status": "complete" if trial.state == TrialState.COMPLETE else "failed",
        "val_metric": trial.value if trial.state == TrialState.COMPLETE else None,
        "fail_reason": attrs.get("fail_reason"), "history": history, "best_epoch": attrs.get("best_epoch"),
        "seconds": float(attrs.get("seconds") or 0.0), "curve": summarize_curve(history, metric),
        "schedule": attrs.get("schedule") or [], "epochs_trained": attrs.get("epochs_trained"),
        "stop_reason": attrs.get("stop_reason") or "", "verdict": verdict, "test_metric": attrs.get("test_metric"),
        "evidence": attrs.get("evidence") or {}, "rationale": attrs.get("rationale") or "",
        "replaced": list(attrs.get("replaced") or []), "pick": attrs.get("pick"), "gated": bool(attrs.get("gated")),
    }


def guidance_versions(run: Run) -> list[Mapping[str, Any]]:
    """The Optimizer's guidance versions, oldest first (study attrs `guidance_v<n>`)."""
    found = [v for k, v in run.attrs.items() if k.startswith("guidance_v") and isinstance(v, dict)]
    return sorted(found, key=lambda v: int(v.get("version", 0)))


def refused_guidance(run: Run) -> list[Mapping[str, Any]]:
    """Guidance the checks refused (study attrs `guidance_refused_<round>`), oldest first."""
    found = [v for k, v in run.attrs.items() if k.startswith("guidance_refused_") and isinstance(v, dict)]
    return sorted(found, key=lambda v: int(v.get("after_round", 0)))


def render(run: Run) -> str:
    metric = str(run.attrs.get("metric", "metric"))
    lines = [f"# Change log: {md(run.attrs.get('run_id', run.name))}", "",
             (f"Target **{md(run.target)}** ({_task(run)}); metric: validation {metric} ({run.direction}); "
              f"budget {run.attrs.get('trials')} trials{_epoch_note(run.attrs)}. Decisions read validation only; "
              f"the test metric is reported for the chosen config at the end."), ""]
    guidance = guidance_versions(run)
    refused = refused_guidance(run)
    default = run.attrs.get("default_config") or {}
    rounds = records(run)
    for trial in rounds:
        lines += render_round(trial, metric, base_config(run, rounds, trial, default), guidance, refused)
    if status(run) == "complete":
        lines += _outcome(run, rounds, metric, default, guidance)
    return "\n".join(lines) + "\n"


def _task(run: Run) -> str:
    task = run.attrs.get("target_task")
    if task:
        return str(task)
    return "classification" if run.maximize else "regression"  # studies written before `target_task` was stored


def _epoch_note(attrs: Mapping[str, Any]) -> str:
    budget = f", at most {attrs['epoch_budget']} epochs" if attrs.get("epoch_budget") else ""
    adapt = ("; the agents also adapt dynamic knobs between epochs of each trial"
             if attrs.get("adapt") == "epoch" else "")
    return budget + adapt


def base_config(run: Run, rounds: list[Record], trial: Record, default: Mapping[str, Any]) -> Mapping[str, Any]:
    """The best config of the rounds before this trial's: the config its changes were applied to."""
    before = [other for other in rounds if (other["round"] or 0) < (trial["round"] or 0)]
    best = best_of(before, run.direction, lambda r: r["val_metric"] if r["status"] == "complete" else None)
    return best["config"] if best else default


def _result_line(trial: Record, metric: str) -> str:
    if trial["status"] != "complete":
        return f"**Result:** failed: {md(trial['fail_reason'])}"
    return (f"**Result:** validation {metric} **{trial['val_metric']:.4f}** (best epoch {trial['best_epoch']} "
            f"of {len(trial['history'])}, {trial['seconds']:.1f} s). Curves: {trial['curve']}")


def _chosen(trial: Record) -> str:
    """Where the config came from: the Advisor's pick among TPE's candidates, TPE's own pick, or free."""
    option = trial["evidence"].get("option") or {}
    origin = origin_words(option.get("origin"))
    rating = f"TPE's score ranks it {ordinal(int(option['rank']))} of {option['of']}" if option.get("rank") else ""
    choice = trial["evidence"].get("choice") or {}
    shown = f"shown as {choice['label']}, {ordinal(int(choice['position']) + 1)} of {len(choice['shown'])}" \
        if choice.get("label") and choice.get("shown") else ""  # menu mode shuffles the list every round
    about = "; ".join(p for p in (origin, rating) if p)
    if trial["pick"] is not None and not trial["gated"]:
        return f"Chosen by the Advisor: candidate {trial['pick']}" + (f" ({'; '.join(p for p in (about, shown) if p)})."
                                                                      if about or shown else ".")
    return f"{about[0].upper()}{about[1:]}." if about else ""


def render_round(trial: Record, metric: str, base: Mapping[str, Any], guidance: Sequence[Mapping[str, Any]],
                 refused: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    lines = [f"## Round {trial['round']}: trial #{trial['number']} ({trial['source']})", ""]
    changes = trial["changes"]
    support = trial["evidence"].get("support") or {}
    if _chosen(trial):
        lines += [_chosen(trial), ""]
    if changes:
        lines += ["| knob | from | to | reason | evidence (computed) |", "| --- | --- | --- | --- | --- |"]
        for knob, new in changes.items():
            lines.append(f"| {knob} | {value(base.get(knob))} | {value(new)} | "
                         f"{cell(trial['reasons'].get(knob, '')) or '-'} | {cell(support.get(knob, '')) or '-'} |")
        lines.append("")
    elif is_source(trial, "default"):
        lines += ["The untuned default config, the shared starting point of every method.", ""]
    if trial["rationale"]:
        lines += [f"**Why (the Advisor):** {line(trial['rationale'])}", ""]
    if trial["expected_effect"] and not is_source(trial, "default"):
        lines += [f"**Expected:** {line(trial['expected_effect'])}", ""]
    if trial["evidence"].get("best") and not is_source(trial, "default"):
        lines += [f"**Evidence:** {line(trial['evidence']['best'])}", ""]
    notes = [f"- _note:_ {line(note)}" for note in trial["notes"]]
    notes += [f"- _replaced (failed the checks):_ {line(what)}" for what in trial["replaced"]]
    lines += [*notes, ""] if notes else []
    lines += [_result_line(trial, metric), ""]
    if trial["schedule"]:
        lines += [(f"**Inside the run** ({trial['epochs_trained']} epochs trained, A/B branches included; "
                   f"{trial['stop_reason']}):"), ""]
        lines += schedule_lines(trial["schedule"], metric)
        lines += ["", f"![schedule of trial #{trial['number']}]({schedule_plot_name(trial['number'])})", ""]
    lines += _verdict_lines(trial["verdict"])
    for version in guidance:
        if version.get("after_round") == trial["round"]:
            lines += [f"**Guidance rewritten (v{version['version']}):** {line(version['guidance'])}", "",
                      f"_Why:_ {line(version['reason'])}", ""]
    for attempt in refused:
        if attempt.get("after_round") == trial["round"]:
            lines += [(f"**Guidance refused** ({line('; '.join(attempt.get('problems') or []))}); "
                      f"v{attempt.get('kept')} stays."), ""]
    return lines


def _verdict_lines(verdict: Mapping[str, Any] | None) -> list[str]:
    if not verdict:
        return []
    flag = "new best" if verdict.get("is_new_best") else "not better than the best so far"
    lines = [f"**Verdict:** {flag}. {line(verdict.get('analysis', ''))}".rstrip(), ""]
    if verdict.get("correction"):
        lines += [f"- _checked in code:_ {line(verdict['correction'])}", ""]
    if verdict.get("replaced"):
        lines += [*(f"- _replaced (failed the checks):_ {line(what)}" for what in verdict["replaced"]), ""]
    if verdict.get("gradient"):
        lines.append("**Textual gradient:**")
        for step in verdict["gradient"]:
            sure = "" if step.get("confidence") is None else f" (confidence {float(step['confidence']):.2f})"
            lines.append(f"- `{step['knob']}`: {step['direction']}{sure}"
                         f" - {line(step['reason'])}")
        lines.append("")
    return lines


def _outcome(run: Run, rounds: list[Record], metric: str, default: Mapping[str, Any],
             guidance: list[Mapping[str, Any]]) -> list[str]:
    best = next((r for r in rounds if run.best is not None and r["number"] == run.best.number), None)
    if best is None:
        return ["## Outcome", "", "No trial completed.", ""]
    lines = ["## Outcome", "",
             (f"Best: trial #{best['number']} (round {best['round']}), validation {metric} "
              f"**{best['val_metric']:.4f}**; test {metric} **{value(best['test_metric'])}** "
              f"(reported only, never used to choose)."), "", "Path of improvements:", ""]
    running: float | None = None
    for trial in rounds:
        if trial["status"] == "complete" and is_better(trial["val_metric"], running, run.direction):
            running = trial["val_metric"]
            what = ", ".join(f"{k}={value(v)}" for k, v in trial["changes"].items()) or "default config"
            lines.append(f"1. round {trial['round']} ({trial['source']}): {what} -> {trial['val_metric']:.4f}")
    diff = {k: v for k, v in best["config"].items() if default.get(k) != v}
    lines += ["", "Best config (changes from the default):", "", "```json",
              json.dumps(diff, indent=2, default=str), "```", ""]
    if guidance:
        lines += [f"Final guidance (v{guidance[-1]['version']}): {line(guidance[-1]['guidance'])}", ""]
    return lines


def write(run: Run, folder: Path) -> Path:
    """changelog.md and the schedule plots it links to; written whole, so a reader never sees half a file."""
    folder.mkdir(parents=True, exist_ok=True)
    metric = str(run.attrs.get("metric", "metric"))
    for trial in run.trials:
        schedule = trial.user_attrs.get("schedule")
        if schedule:
            plots.plot_schedule(folder / schedule_plot_name(trial.number), schedule, metric,
                                title=f"trial #{trial.number}: the schedule the agents wrote")
    return write_whole(folder / CHANGELOG, render(run))
