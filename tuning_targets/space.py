"""The search space: every knob a tuner may turn, in the four LGT dimensions.

One `SearchSpace` serves every tuner. Optuna samplers read it as
distributions, the grid baseline reads its grid levels, and the LLM agents
read `describe()`, plain dicts with each knob's dimension, range and a
one-line description. LLM proposals are untrusted, so `validate` either
refuses bad values (strict, for configs a user typed) or repairs them
(lenient, for LLM output) and says what it changed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna.distributions as od

from lgt.errors import UserError

Dimension = Literal["architecture", "training", "features", "hyperparameters"]
DIMENSIONS: tuple[Dimension, ...] = ("architecture", "training", "features", "hyperparameters")

Value = float | int | str | bool
Config = dict[str, Value]


class _Repair(Exception):
    """A value had to be changed to fit; carries the repaired value."""

    def __init__(self, value: Value, note: str) -> None:
        super().__init__(note)
        self.value = value
        self.note = note


@dataclass(frozen=True)
class Knob(ABC):
    """One tunable setting.

    `dynamic` marks knobs that may change between epochs of one run
    (learning rate, regularisation strength, augmentation); the rest are
    structural and fixed for a trial.
    """

    name: str
    dimension: Dimension
    description: str
    dynamic: bool = field(default=False, kw_only=True)

    @abstractmethod
    def distribution(self) -> od.BaseDistribution: ...

    @abstractmethod
    def coerce(self, value: Any) -> Value:
        """Return `value` in range, or raise `_Repair` with the nearest valid value.

        Raises ValueError when the value cannot be read as this knob's type.
        """

    @abstractmethod
    def sample(self, rng: random.Random) -> Value: ...

    @abstractmethod
    def grid_levels(self, default: Value) -> list[Value]:
        """A few values worth trying on a grid, the default among them."""

    @abstractmethod
    def range_text(self) -> str: ...

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dimension": self.dimension,
            "type": type(self).__name__.removesuffix("Knob").lower(),
            "range": self.range_text(),
            "dynamic": self.dynamic,
            "description": self.description,
        }


@dataclass(frozen=True)
class FloatKnob(Knob):
    low: float = 0.0
    high: float = 1.0
    log: bool = False

    def distribution(self) -> od.BaseDistribution:
        return od.FloatDistribution(self.low, self.high, log=self.log)

    def coerce(self, value: Any) -> Value:
        number = _read_number(value, "a number")
        clipped = min(max(number, float(self.low)), float(self.high))
        if isinstance(value, str):
            fix = f"read as {number:g}" + (f" and clipped to {clipped:g}" if clipped != number else "")
            raise _Repair(clipped, f"{self.name}={shown(value)} is text, not a number; {fix}")
        if clipped != number:
            raise _Repair(clipped, f"{self.name}={number:g} is outside [{self.low:g}, {self.high:g}]; clipped to {clipped:g}")
        return number

    def sample(self, rng: random.Random) -> Value:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        # exp(log(x)) can land a rounding error outside the bounds.
        return min(max(value, float(self.low)), float(self.high))

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"low": self.low, "high": self.high}

    def grid_levels(self, default: Value) -> list[Value]:
        d = float(default)
        if self.log:
            levels = [max(self.low, d / 10), d, min(self.high, d * 10)]
        else:
            levels = [self.low, d, self.high]
        return sorted(set(levels))

    def range_text(self) -> str:
        return f"[{self.low:g}, {self.high:g}]" + (" log-scale" if self.log else "")


@dataclass(frozen=True)
class IntKnob(Knob):
    low: int = 0
    high: int = 1
    log: bool = False

    def distribution(self) -> od.BaseDistribution:
        return od.IntDistribution(self.low, self.high, log=self.log)

    def coerce(self, value: Any) -> Value:
        number = _read_number(value, "an integer")
        snapped = min(max(round(number), self.low), self.high)
        if isinstance(value, str):
            raise _Repair(snapped, f"{self.name}={shown(value)} is text, not an integer; read as {snapped}")
        if snapped != number:
            raise _Repair(snapped, f"{self.name}={number:g} is not an integer in [{self.low}, {self.high}]; set to {snapped}")
        return snapped

    def sample(self, rng: random.Random) -> Value:
        if self.log:
            return round(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return rng.randint(self.low, self.high)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"low": self.low, "high": self.high}

    def grid_levels(self, default: Value) -> list[Value]:
        return sorted({self.low, int(default), self.high})

    def range_text(self) -> str:
        return f"[{self.low}, {self.high}]" + (" log-scale" if self.log else "")


@dataclass(frozen=True)
class CategoricalKnob(Knob):
    """A knob with a few named choices; `ordered` when "more" and "less" mean something for them.

    Numeric choices (batch sizes, widths) are ordered; so are strengths
    ("none" < "light" < ...) declared so. Others (optimizers, activations)
    are switched, never increased or decreased.
    """

    choices: tuple[Value, ...] = ()
    ordered: bool | None = None  # None: ordered when every choice is a number

    @property
    def is_ordered(self) -> bool:
        if self.ordered is not None:
            return self.ordered
        return all(isinstance(c, int | float) and not isinstance(c, bool) for c in self.choices)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"choices": list(self.choices), "ordered": self.is_ordered}

    def distribution(self) -> od.BaseDistribution:
        return od.CategoricalDistribution(self.choices)

    def coerce(self, value: Any) -> Value:
        for choice in self.choices:
            if value == choice and type(value) is type(choice):
                return choice
        # LLMs write booleans and numbers as strings ("true", "64"): snap them.
        text = str(value).strip().lower()
        for choice in self.choices:
            if str(choice).lower() == text:
                raise _Repair(choice, f"{self.name}={shown(value)} is not one of the choices; read as {choice!r}")
        numeric = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if numeric:
            try:
                number = float(value)
            except (TypeError, ValueError, OverflowError):
                number = math.nan
            if math.isfinite(number):
                nearest = min(numeric, key=lambda c: abs(float(c) - number))
                raise _Repair(nearest, f"{self.name}={shown(value)} is not a choice; snapped to nearest {nearest!r}")
        raise ValueError(f"{shown(value)} is not a choice")

    def sample(self, rng: random.Random) -> Value:
        return rng.choice(self.choices)

    def grid_levels(self, default: Value) -> list[Value]:
        return list(self.choices)

    def range_text(self) -> str:
        return "one of " + ", ".join(json.dumps(c) for c in self.choices)


def shown(value: Any, limit: int = 40) -> str:
    """A value as a note or an error shows it: its repr, cut short (an LLM or a file may send anything)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text):,} characters)"


def _read_number(value: Any, kind: str) -> float:
    """A finite float from a number or numeric text; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected {kind}, got {shown(value)}")  # noqa: TRY004 - callers read ValueError as "unreadable"
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ValueError(f"{shown(value)} is too large for {kind}") from None
    except ValueError:
        raise ValueError(f"expected {kind}, got {shown(value)}") from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {shown(value)}")
    return number


@dataclass
class Validated:
    """A config that fits the space, and what had to change to make it fit."""

    config: Config
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class SearchSpace:
    """An ordered set of knobs.

    The order is meaningful: it is the order in which the grid baseline
    spends its budget (most influential knobs first).
    """

    def __init__(self, knobs: Sequence[Knob]) -> None:
        names = [k.name for k in knobs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate knob names in {names}")
        self.knobs: dict[str, Knob] = {k.name: k for k in knobs}

    def __contains__(self, name: object) -> bool:
        return name in self.knobs

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.knobs.values())

    def __len__(self) -> int:
        return len(self.knobs)

    def distributions(self) -> dict[str, od.BaseDistribution]:
        return {name: knob.distribution() for name, knob in self.knobs.items()}

    def sample(self, rng: random.Random) -> Config:
        return {name: knob.sample(rng) for name, knob in self.knobs.items()}

    def describe(self) -> list[dict[str, Any]]:
        return [knob.describe() for knob in self.knobs.values()]

    def validate(self, config: dict[str, Any], *, base: Config | None = None, strict: bool = True) -> Validated:
        """Check a (possibly partial) config and complete it from `base`.

        Strict mode raises UserError on the first problem; it is for configs
        a person wrote. Lenient mode drops unknown knobs, clips and snaps
        values into range, falls back to `base` for unreadable values, and
        lists every repair in `notes`; it is for LLM proposals.
        """
        if not isinstance(config, dict):
            raise UserError(f"a config must be a JSON object of knob: value, got {type(config).__name__}")
        result = Validated(config={})
        for name, value in config.items():
            knob = self.knobs.get(name)
            if knob is None:
                if strict:
                    raise UserError(f"unknown knob {shown(name)}; known knobs: {', '.join(self.knobs)}")
                result.dropped.append(name)
                result.notes.append(f"unknown knob {shown(name)} dropped")
                continue
            try:
                result.config[name] = knob.coerce(value)
            except _Repair as repair:
                if strict:
                    raise UserError(f"knob {name!r}: {repair.note.split(';')[0]}; allowed {knob.range_text()}") from None
                result.config[name] = repair.value
                result.notes.append(repair.note)
            except ValueError as exc:
                if strict or base is None:
                    raise UserError(f"knob {name!r}: {exc}; allowed {knob.range_text()}") from None
                result.notes.append(f"{name}: {exc}; kept {base[name]!r}")
        missing = [n for n in self.knobs if n not in result.config]
        if missing:
            if base is None:
                raise UserError(f"config is missing knobs: {', '.join(missing)}")
            for name in missing:
                result.config[name] = base[name]
        result.config = {name: result.config[name] for name in self.knobs}
        return result

    def grid(self, default: Config, min_points: int) -> dict[str, list[Value]]:
        """Grid levels for the grid baseline.

        Knobs are taken in space order, each at its `grid_levels`, until the
        grid holds at least `min_points` points; the remaining knobs stay at
        their default (a one-value list). The first knob leaves out its
        default level, so no grid point repeats the default config. Optuna's GridSampler then visits
        the points in a seeded random order, so a budget smaller than the
        grid sees an unbiased subset of it.
        """
        grid: dict[str, list[Value]] = {}
        size = 1
        for name, knob in self.knobs.items():
            if size >= min_points:
                grid[name] = [default[name]]
                continue
            levels = knob.grid_levels(default[name])
            if not grid and len(levels) > 2:
                # Every method runs the default config first; leaving the default
                # level of the first knob out keeps the grid from running it twice.
                levels = [v for v in levels if v != default[name]]
            grid[name] = levels
            size *= len(levels)
        return grid

    def to_json(self) -> str:
        """Everything needed to rebuild the space, for storage next to a run."""
        return json.dumps([knob_to_dict(k) for k in self.knobs.values()], indent=2)

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls([knob_from_dict(d) for d in json.loads(text)])


_KNOB_TYPES: dict[str, type[Knob]] = {"float": FloatKnob, "int": IntKnob, "categorical": CategoricalKnob}


def knob_to_dict(knob: Knob) -> dict[str, Any]:
    data = dataclasses.asdict(knob)
    data["type"] = type(knob).__name__.removesuffix("Knob").lower()
    if "choices" in data:
        data["choices"] = list(data["choices"])
    return data


def knob_from_dict(data: dict[str, Any]) -> Knob:
    fields = dict(data)
    knob_type = _KNOB_TYPES[fields.pop("type")]
    if "choices" in fields:
        fields["choices"] = tuple(fields["choices"])
    return knob_type(**fields)


def config_key(config: Config) -> str:
    """A canonical text form, so configs can be compared for "already run"."""
    rounded = {k: (round(v, 10) if isinstance(v, float) else v) for k, v in sorted(config.items())}
    return json.dumps(rounded, sort_keys=True)


def config_diff(before: Config, after: Config) -> dict[str, tuple[Value | None, Value | None]]:
    return {k: (before.get(k), after.get(k)) for k in after if before.get(k) != after.get(k)}
