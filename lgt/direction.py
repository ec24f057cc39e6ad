"""Which value is better, written once: a metric's direction, the comparison, and the best of many.

Every layer compares values: the trainer keeps its best epoch, the agents
call a trial a new best, the graphs pick the best trial and judge the gate,
the reports draw the best so far, and an Optuna study has a direction. So
the rule lives here, in a leaf module that imports only the standard
library, and every layer imports it like `lgt.errors` (the import contract
in pyproject.toml allows exactly the leaf modules; tests/lgt/test_leaves.py
checks they stay leaves).

The rule:

- a value beats another when it is strictly better in the direction: higher
  when maximizing, lower when minimizing;
- a missing value (None) or NaN never wins, and any other value beats it;
- infinities compare as numbers (callers that want finite values only, such
  as `agents.records.scored`, leave the others out first);
- values closer than `TIE` (relative) tie: the same accuracy computed in
  float32 by torch and in float64 by scikit-learn differs in the 8th digit,
  and a "new best" by 2e-08 is noise a reader would be misled by;
- ties keep the earlier: the best of a sequence is the first of its best values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeVar

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")

T = TypeVar("T")
# Relative difference below which two values tie (float32 carries about 7 significant digits).
TIE = 1e-6


def direction_of(maximize: bool) -> Direction:
    """The direction of a study or a run that says only whether it maximizes."""
    return "maximize" if maximize else "minimize"


def maximizes(direction: str) -> bool:
    """True for "maximize", False for "minimize"; anything else is a bug, refused."""
    if direction not in DIRECTIONS:
        raise ValueError(f"a direction is 'maximize' or 'minimize', got {direction!r}")
    return direction == "maximize"


def sign(direction: str) -> float:
    """+1.0 when maximizing, -1.0 when minimizing: `sign * value` grows as the value gets better.

    For sort keys and signed gains; a comparison of two values is `is_better`.
    """
    return 1.0 if maximizes(direction) else -1.0


def comparable(value: float | None) -> bool:
    """Whether `value` can win a comparison: not None and not NaN."""
    return value is not None and not math.isnan(value)


def is_better(value: float | None, than: float | None, direction: str) -> bool:
    """True when `value` strictly beats `than`; None or NaN never wins and loses to any other value."""
    if not comparable(value):
        return False
    if not comparable(than):
        return True
    assert value is not None and than is not None
    if math.isfinite(value) and math.isfinite(than) and abs(value - than) <= TIE * max(1.0, abs(than)):
        return False
    return value > than if maximizes(direction) else value < than


def gain(new: float, old: float, direction: str) -> float:
    """How much better `new` is than `old` in the direction (negative: worse)."""
    return sign(direction) * (new - old)


def best_index(values: Iterable[float | None], direction: str) -> int | None:
    """The position of the best value (the earliest on ties); None when no value is comparable."""
    best: int | None = None
    best_value: float | None = None
    for i, value in enumerate(values):
        if is_better(value, best_value, direction):
            best, best_value = i, value
    return best


def best_of(items: Iterable[T], direction: str, value: Callable[[T], float | None]) -> T | None:
    """The item whose `value` is best (the earliest on ties); None when no item has a comparable value."""
    listed = list(items)
    index = best_index((value(item) for item in listed), direction)
    return None if index is None else listed[index]


def best_first(items: Sequence[T], direction: str, value: Callable[[T], float | None]) -> list[T]:
    """The items best first (earlier first on ties); those without a comparable value last, in their order."""
    values = [value(item) for item in items]

    def before(i: int, j: int) -> int:
        if is_better(values[i], values[j], direction):
            return -1
        return 1 if is_better(values[j], values[i], direction) else i - j

    return [items[i] for i in sorted(range(len(items)), key=functools.cmp_to_key(before))]
