"""The change log: an engineer's notebook of the run, rendered from the state.

It is rewritten after every round, so a run that stops half-way still
leaves a readable log of what it did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from graphs.schedule import schedule_lines
from tuning_targets import Target


def _v(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (bool, str)) else str(value)


def _result_line(trial: Mapping[str, Any], metric: str) -> str:
    if trial["status"] != "complete":
        return f"**Result:** failed: {trial['fail_reason']}"
    epochs = len(trial["history"])
    return (f"**Result:** validation {metric} **{trial['val_metric']:.4f}** (best epoch {trial['best_epoch']} "
            f"of {epochs}, {trial['seconds']:.1f} s). Curves: {trial['curve']}")


def render_round(trial: Mapping[str, Any], metric: str, base: Mapping[str, Any],
                 guidance: list[Mapping[str, Any]]) -> list[str]:
    lines = [f"## Round {trial['round']}: trial #{trial['number']} ({trial['source']})", ""]
    changes = trial.get("changes") or {}
    if changes:
        lines += ["| knob | from | to | reason |", "| --- | --- | --- | --- |"]
        for knob, value in changes.items():
            reason = (trial.get("reasons") or {}).get(knob, "").replace("|", "/").replace("\n", " ")
            lines.append(f"| {knob} | {_v(base.get(knob))} | {_v(value)} | {reason} |")
        lines.append("")
    elif trial["source"] == "default":
        lines += ["The untuned default config, the shared starting point of every method.", ""]
    if trial.get("expected_effect") and trial["source"] != "default":
        lines += [f"**Expected:** {trial['expected_effect']}", ""]
    for note in trial.get("notes") or []:
        lines.append(f"- _note:_ {note}")
    if trial.get("notes"):
        lines.append("")
    lines += [_result_line(trial, metric), ""]
    if trial.get("schedule"):
        lines += [f"**Inside the run** ({trial.get('epochs_trained')} epochs trained, A/B branches included; "
                  f"{trial.get('stop_reason', '')}):", ""]
        lines += schedule_lines(trial["schedule"], metric)
        lines.append("")
        if trial.get("schedule_plot"):
            lines += [f"![schedule of trial #{trial['number']}]({trial['schedule_plot']})", ""]
    verdict = trial.get("verdict") or {}
    if verdict:
        flag = "new best" if verdict.get("is_new_best") else "not better than the best so far"
        lines += [f"**Verdict:** {flag}. {verdict.get('analysis', '')}", ""]
        if verdict.get("correction"):
            lines += [f"- _checked in code:_ {verdict['correction']}", ""]
        if verdict.get("gradient"):
            lines.append("**Textual gradient:**")
            for step in verdict["gradient"]:
                lines.append(f"- `{step['knob']}`: {step['direction']} (confidence {float(step['confidence']):.2f})"
                             f" - {step['reason']}")
            lines.append("")
    for version in guidance:
        if version["after_round"] == trial["round"]:
            lines += [f"**Guidance rewritten (v{version['version']}):** {version['guidance']}", "",
                      f"_Why:_ {version['reason']}", ""]
    return lines


def _epoch_note(state: Mapping[str, Any]) -> str:
    budget = f", at most {state['epoch_budget']} epochs" if state.get("epoch_budget") else ""
    adapt = ("; the agents also adapt dynamic knobs between epochs of each trial"
             if state.get("adapt") == "epoch" else "")
    return budget + adapt


def render(state: Mapping[str, Any], target: Target, *, final: bool = False) -> str:
    metric = target.metric
    trials = state.get("trials", [])
    lines = [f"# Change log: {state.get('run_id', '')}", "",
             f"Target **{target.name}** ({target.task}); metric: validation {metric} ({target.direction}); "
             f"budget {state.get('budget')} trials{_epoch_note(state)}. Decisions read validation only; "
             f"the test metric is "
             f"reported for the chosen config at the end.", ""]
    best_config: Mapping[str, Any] = target.default_config
    best_value: float | None = None
    for trial in trials:
        lines += render_round(trial, metric, best_config, state.get("guidance_history", []))
        if trial["status"] == "complete" and target.better(trial["val_metric"], best_value):
            best_config, best_value = trial["config"], trial["val_metric"]
    if final:
        lines += render_summary(state, target)
    return "\n".join(lines) + "\n"


def render_summary(state: Mapping[str, Any], target: Target) -> list[str]:
    trials = state.get("trials", [])
    if state.get("best") is None:
        return ["## Outcome", "", "No trial completed.", ""]
    best = trials[state["best"]]
    metric = target.metric
    lines = ["## Outcome", "",
             f"Best: trial #{best['number']} (round {best['round']}), validation {metric} "
             f"**{best['val_metric']:.4f}**; test {metric} **{_v(best.get('test_metric'))}** "
             f"(reported only, never used to choose).", "", "Path of improvements:", ""]
    running: float | None = None
    for trial in trials:
        if trial["status"] == "complete" and target.better(trial["val_metric"], running):
            running = trial["val_metric"]
            what = ", ".join(f"{k}={_v(v)}" for k, v in (trial.get("changes") or {}).items()) or "default config"
            lines.append(f"1. round {trial['round']} ({trial['source']}): {what} -> {trial['val_metric']:.4f}")
    diff = {k: v for k, v in best["config"].items() if target.default_config.get(k) != v}
    lines += ["", "Best config (changes from the default):", "", "```json",
              json.dumps(diff, indent=2, default=str), "```", ""]
    if state.get("guidance"):
        lines += [f"Final guidance (v{len(state.get('guidance_history', []))}): {state['guidance']}", ""]
    return lines


def write_changelog(path: Path, state: Mapping[str, Any], target: Target, *, final: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(render(state, target, final=final))
    tmp.replace(path)
    return path
