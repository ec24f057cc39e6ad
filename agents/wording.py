"""Checks on the words an LLM writes, before anything shows or reuses them.

An LLM's numbers are validated against the search space; its words are
checked here, in code, the same way: a reason must be words (not symbols or
bare numbers) of a sensible length, may name only knobs that exist, and a
direction it gives a knob must agree with the change actually made ("lower
the learning rate" beside 0.01 -> 0.1 fails). A categorical knob is
switched, never increased or decreased, unless its choices are ordered.

Each check returns the problems it found, in words; an empty list means the
text stands. What to do with a failing text (replace it with one rendered
from the evidence, refuse guidance) is the caller's decision.

The direction check only reads a direction word next to a knob's name
("lower the learning rate", "dropout higher"), so "more dropout to reduce
overfitting" is not read as asking to reduce dropout: a good model's
sentence must never be thrown away by a check that misreads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

UP = ("increase", "increasing", "increased", "raise", "raising", "raised", "higher", "larger", "bigger", "more",
      "up", "boost", "boosting", "grow", "growing", "add", "adding", "longer", "wider", "deeper", "stronger")
DOWN = ("decrease", "decreasing", "decreased", "lower", "lowering", "lowered", "reduce", "reducing", "reduced",
        "smaller", "less", "fewer", "down", "cut", "cutting", "drop", "dropping", "shrink", "shrinking", "shorter",
        "narrower", "shallower", "weaker")
# Knob names as people write them.
ALIASES = {"learning_rate": ("lr",)}
# snake_case names a good text may use that are not knobs: the record's own fields.
NOT_KNOBS = {"train_loss", "val_loss", "val_metric", "val_accuracy", "val_mae", "test_metric", "best_epoch"}
MIN_CHARS = 12
MIN_WORDS = 3
WORD_SHARE = 0.6  # letters among the non-space characters


def _spoken(knob: str) -> list[str]:
    """Ways a text may name a knob: learning_rate, learning rate, learning-rate, lr."""
    words = knob.replace("_", " ")
    return [knob, words, knob.replace("_", "-"), *ALIASES.get(knob, ())]


def is_words(text: str, *, max_chars: int) -> list[str]:
    """Problems with `text` as prose: too short or long, too few words, mostly symbols or numbers."""
    stripped = " ".join(text.split())
    if len(stripped) < MIN_CHARS:
        return [f"too short ({len(stripped)} characters)"]
    if len(stripped) > max_chars:
        return [f"too long ({len(stripped)} characters, at most {max_chars})"]
    words = re.findall(r"[A-Za-z]{2,}", stripped)
    if len(words) < MIN_WORDS:
        return [f"only {len(words)} word(s)"]
    visible = [c for c in stripped if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters < WORD_SHARE * len(visible):
        return ["mostly symbols or numbers, not words"]
    return []


def unknown_knobs(text: str, knobs: Sequence[str]) -> list[str]:
    """Problems: snake_case names in `text` that are not knobs of the space."""
    known = set(knobs) | NOT_KNOBS
    found = sorted({n for n in re.findall(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b", text) if n not in known})
    return [f"names a knob that does not exist: {n}" for n in found]


def _direction_of(text: str, knob: str) -> set[str]:
    """The directions `text` gives `knob`: a direction word right before or after one of its names."""
    lowered = " ".join(text.lower().split())
    found: set[str] = set()
    for name in _spoken(knob):
        name_re = re.escape(name)
        for words, way in ((UP, "up"), (DOWN, "down")):
            verbs = "|".join(words)
            before = rf"\b(?:{verbs})\s+(?:the\s+|its\s+|a\s+)?{name_re}\b"
            after = rf"\b{name_re}\s+(?:is\s+|was\s+|too\s+|even\s+|much\s+|a\s+bit\s+)*(?:{verbs})\b"
            if re.search(before, lowered) or re.search(after, lowered):
                found.add(way)
    return found


def move(old: Any, new: Any, choices: Sequence[Any] | None = None) -> str | None:
    """How a knob moved: "up", "down", or None (unchanged, or a switch between unordered choices)."""
    if choices is not None:
        if old in choices and new in choices and old != new:
            return "up" if list(choices).index(new) > list(choices).index(old) else "down"
        return None
    if isinstance(old, bool) or isinstance(new, bool) or not isinstance(old, int | float) \
            or not isinstance(new, int | float) or old == new:
        return None
    return "up" if new > old else "down"


def contradictions(text: str, changes: Mapping[str, tuple[Any, Any]],
                   knobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems: `text` moves a knob one way while the change moves it the other, or ups/downs an unordered one.

    `changes` maps knob to (old, new); `knobs` maps name to its spec (``type``,
    and ``choices`` / ``ordered`` for categorical ones).
    """
    problems = []
    for knob, (old, new) in changes.items():
        said = _direction_of(text, knob)
        if not said:
            continue
        spec = knobs.get(knob, {})
        if spec.get("type") == "categorical" and not spec.get("ordered"):
            problems.append(f"says to move {knob} {'/'.join(sorted(said))}, but {knob} is categorical: it is "
                            f"switched, not increased or decreased")
            continue
        actual = move(old, new, spec.get("choices") if spec.get("type") == "categorical" else None)
        if actual is not None and actual not in said:
            word = "increase" if actual == "down" else "decrease"
            problems.append(f"says {word} {knob}, but {knob} went {_v(old)} -> {_v(new)}")
    return problems


def check_reason(text: str, changes: Mapping[str, tuple[Any, Any]], knobs: Mapping[str, Mapping[str, Any]],
                 *, max_chars: int) -> list[str]:
    """Every check a reason (or an expected effect) must pass."""
    return [*is_words(text, max_chars=max_chars), *unknown_knobs(text, list(knobs)),
            *contradictions(text, changes, knobs)]


def check_step(knob: str, direction: str, reason: str, knobs: Mapping[str, Mapping[str, Any]],
               *, max_chars: int) -> tuple[list[str], list[str]]:
    """(problems with the step itself, problems with its reason) for one textual-gradient step.

    A step whose knob does not exist, or that increases or decreases an
    unordered categorical knob, or switches to a value that is not a
    choice, is wrong in itself and must be dropped; a bad reason can be
    replaced.
    """
    spec = knobs.get(knob)
    if spec is None:
        return [f"{knob} is not a knob"], []
    step: list[str] = []
    categorical = spec.get("type") == "categorical"
    if direction in ("increase", "decrease") and categorical and not spec.get("ordered"):
        step.append(f"{knob} is categorical: it is switched to a value, never {direction}d")
    if direction.startswith("switch to "):
        target = direction.removeprefix("switch to ").strip().strip('"')
        if not categorical:
            step.append(f"{knob} is numeric: it is increased or decreased, not switched")
        elif target.lower() not in {str(c).lower() for c in spec.get("choices") or ()}:
            step.append(f"{target!r} is not a choice of {knob}")
    said = _direction_of(reason, knob)
    way = {"increase": "up", "decrease": "down"}.get(direction)
    reason_problems = [*is_words(reason, max_chars=max_chars), *unknown_knobs(reason, list(knobs))]
    if way and said and way not in said:
        reason_problems.append(f"its reason moves {knob} the other way from '{direction}'")
    return step, reason_problems


def check_guidance(text: str, knobs: Sequence[str], *, max_chars: int) -> list[str]:
    """Guidance must be words (each rule a line), and name only knobs that exist."""
    return [*is_words(text, max_chars=max_chars), *unknown_knobs(text, knobs)]


def _v(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
