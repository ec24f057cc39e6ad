"""The short lists a menu-mode agent picks from, built by code from the run's own numbers.

A 135M model picks from a short list cheaply and about as well as it can
do anything; what it cannot do is write a step or a rule that is both
well-formed and true. So code writes the options (each one a remedy the
playbook backs for a problem the numbers show, or a rule the record backs)
and the model's probabilities choose among them (`agents.scoring`). The
choices are still checked in code before anything uses them
(`graphs.words`), as every LLM output is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import diagnoses
from agents.diagnostics import diagnose, flags
from agents.records import KnobSpec, MetricInfo, TrialRecord, scored, val
from agents.wording import move
from lgt.direction import best_first, is_better

MAX_OPTIONS = 8  # letters A to H: one token each, and a list a small model can hold
PER_CAUSE = 3  # remedies offered per problem, so one problem does not fill the menu


def remedy_menu(space: Sequence[KnobSpec], causes: Sequence[str], newest: Mapping[str, Any],
                earlier: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Gradient steps worth offering the Evaluator: (knob, direction, cause), at most `MAX_OPTIONS`.

    Against a curve problem: the playbook's remedies (`agents.diagnoses.REMEDIES`)
    on knobs of this space. For "improved": keep moving each knob the trial
    moved; for "no gain": turn it back. Problems take turns, so each one
    the numbers show gets a remedy in the list.
    """
    knobs = {k["name"]: k for k in space}
    per_cause: list[list[dict[str, str]]] = []
    moved = _moves(newest, earlier, knobs)
    for cause in causes:
        options: list[dict[str, str]] = []
        if cause in ("improved", "no gain"):
            for knob, (way, before) in moved.items():
                spec = knobs[knob]
                if way is not None:
                    keep = way if cause == "improved" else {"up": "down", "down": "up"}[way]
                    options.append({"knob": knob, "direction": "increase" if keep == "up" else "decrease",
                                    "cause": cause})
                elif cause == "no gain" and spec.get("type") == "categorical":
                    options.append({"knob": knob, "direction": f"switch to {before}", "cause": cause})
        else:
            held = newest.get("config") or knobs  # on a conditional space, the knobs of the trial's own model
            for knob in knobs:
                if knob not in held:
                    continue
                wanted = diagnoses.remedy(cause, knob)
                if wanted is not None:
                    options.append({"knob": knob, "direction": wanted, "cause": cause})
        per_cause.append(options[:PER_CAUSE])
    steps, moves = [], set()
    for step in _interleave(per_cause):  # one line per move: the first problem it answers names it
        if (step["knob"], step["direction"]) not in moves:
            moves.add((step["knob"], step["direction"]))
            steps.append(step)
    return steps


def step_line(step: Mapping[str, str]) -> str:
    """A menu step as the Evaluator reads it: "raise dropout, against overfitting"."""
    direction = step["direction"]
    verb = diagnoses.WORDS.get(direction, direction)
    return f"{verb} {step['knob']}, against {step['cause']}" if step["cause"] not in ("improved", "no gain") else \
        f"{verb} {step['knob']}, as the trial's change {'paid' if step['cause'] == 'improved' else 'did not pay'}"


def rules_menu(space: Sequence[KnobSpec], record: Sequence[TrialRecord], metric: MetricInfo) -> list[dict[str, Any]]:
    """Guidance rules worth offering the Optimizer, each one the record backs, at most `MAX_OPTIONS`.

    "prefer": a playbook remedy for a problem some trial showed; "avoid": a
    knob set as in a trial that failed or scored below the median; "keep":
    a knob set as in the best trial.
    """
    knobs = {k["name"]: k for k in space}
    complete = [t for t in record if scored(t)]
    prefer: list[dict[str, Any]] = []
    for problem in diagnoses.CURVES:
        if problem == "healthy" or not any(problem in flags(diagnose(t, metric)) for t in complete):
            continue
        remedies = [k for k in knobs if diagnoses.remedy(problem, k) is not None][:2]
        prefer += [{"shape": "prefer", "knob": k, "direction": diagnoses.remedy(problem, k), "when": problem}
                   for k in remedies]
    by_value = best_first(complete, metric["direction"], val)
    median = by_value[len(by_value) // 2] if by_value else None
    bad = [t for t in record if t.get("status") != "complete"] + \
        ([t for t in by_value[::-1] if median is not None and is_better(val(median), val(t), metric["direction"])][:1])
    avoid = [{"shape": "avoid", "knob": knob, "trial": int(t["number"])} for t in bad[:2] if "number" in t
             for knob in list(t.get("changes") or {})[:1] if knob in knobs]
    keep = [{"shape": "keep", "knob": knob, "trial": int(by_value[0]["number"])} for knob in
            list(by_value[0].get("changes") or {})[:2] if knob in knobs] \
        if by_value and "number" in by_value[0] else []
    return _interleave([prefer, avoid, keep])


def rule_line(rule: Mapping[str, Any]) -> str:
    """A menu rule as the Optimizer reads it."""
    if rule["shape"] == "prefer":
        return f"prefer to {diagnoses.WORDS.get(rule['direction'], rule['direction'])} {rule['knob']} when a trial " \
               f"shows {rule['when']}"
    return f"{rule['shape']} {rule['knob']} as in trial #{rule['trial']}"


def _moves(newest: Mapping[str, Any], earlier: Mapping[str, Any] | None,
           knobs: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str | None, Any]]:
    """Knob -> (which way the newest trial moved it from the best config before it, the value it had there)."""
    base = (earlier or {}).get("config") or {}
    out: dict[str, tuple[str | None, Any]] = {}
    for knob, new in (newest.get("changes") or {}).items():
        spec = knobs.get(knob)
        if spec is None or knob not in base:
            continue
        out[knob] = (move(base[knob], new, spec.get("choices") if spec.get("type") == "categorical" else None),
                     base[knob])
    return out


def _interleave(groups: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The groups' options taking turns, duplicates dropped, at most `MAX_OPTIONS`."""
    out: list[dict[str, Any]] = []
    for i in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if i < len(group) and group[i] not in out and len(out) < MAX_OPTIONS:
                out.append(group[i])
    return out
