"""The search space: every knob a tuner may turn, in the four LGT dimensions.

One `SearchSpace` serves every tuner. Optuna samplers read it as
distributions, the grid baseline reads its grid levels, and the LLM agents
read `describe()`, plain dicts with each knob's dimension, range and a
one-line description. LLM proposals are untrusted, so `validate` either
refuses bad values (strict, for configs a user typed) or repairs them
(lenient, for LLM output) and says what it changed.

A space may be conditional: a knob with `active_when={"model": ("hist_gb",)}`
exists only in configs whose `model` is `hist_gb` (the tabular targets'
model families). A config carries only its active knobs; `validate`,
`sample`, `suggest` (Optuna's define-by-run), `distributions(config)`, the
grid and `describe()` all follow the conditions, and a space without any
behaves exactly as an unconditional one always did.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

import optuna.distributions as od

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

from lgt.errors import UserError

Dimension = Literal["architecture", "training", "features", "hyperparameters"]
DIMENSIONS: tuple[Dimension, ...] = ("architecture", "training", "features", "hyperparameters")

Value = float | int | str | bool
Config = dict[str, Value]
# A knob's condition: controlling knob -> the values under which the knob is active (all must hold).
Condition = dict[str, tuple[Value, ...]]


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
    structural and fixed for a trial. `active_when` makes the knob exist
    only while other knobs hold given values (`{"model": ("hist_gb",)}`);
    `default` is the value a config takes when the knob becomes active and
    nothing else gives one (switching `model` to `hist_gb` needs values for
    hist_gb's knobs).
    """

    name: str
    dimension: Dimension
    description: str
    dynamic: bool = field(default=False, kw_only=True)
    active_when: Condition | None = field(default=None, kw_only=True, hash=False)
    default: Value | None = field(default=None, kw_only=True)

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

    @abstractmethod
    def suggest(self, trial: BaseTrial) -> Value:
        """Ask an Optuna trial for this knob (define-by-run), with the same distribution as `distribution()`."""

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

    def suggest(self, trial: BaseTrial) -> Value:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)


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

    def suggest(self, trial: BaseTrial) -> Value:
        return trial.suggest_int(self.name, self.low, self.high, log=self.log)


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

    def suggest(self, trial: BaseTrial) -> Value:
        return cast(Value, trial.suggest_categorical(self.name, list(self.choices)))


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
    spends its budget (most influential knobs first). A knob's condition may
    name only categorical knobs before it, so a config can be decided knob
    by knob, which is how Optuna's define-by-run asks for it (`suggest`).
    """

    def __init__(self, knobs: Sequence[Knob]) -> None:
        names = [k.name for k in knobs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate knob names in {names}")
        self.knobs: dict[str, Knob] = {k.name: k for k in knobs}
        earlier: dict[str, Knob] = {}
        for knob in knobs:
            for controller, values in (knob.active_when or {}).items():
                ruler = earlier.get(controller)
                if not isinstance(ruler, CategoricalKnob):
                    raise ValueError(f"knob {knob.name!r} depends on {controller!r}, which must be a categorical "  # noqa: TRY004 - a bad space, not a bad type
                                     f"knob listed before it")
                if not values or any(not _member(v, ruler.choices) for v in values):
                    raise ValueError(f"knob {knob.name!r} depends on {controller!r} being one of {list(values)}, "
                                     f"which are not all among its choices {list(ruler.choices)}")
            earlier[knob.name] = knob
        self.controllers: list[str] = [name for name in self.knobs
                                       if any(name in (k.active_when or {}) for k in knobs)]

    def __contains__(self, name: object) -> bool:
        return name in self.knobs

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.knobs.values())

    def __len__(self) -> int:
        return len(self.knobs)

    # --- conditions -----------------------------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        """Whether some knob exists only under a condition (then configs differ in which knobs they hold)."""
        return bool(self.controllers)

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether knob `name` belongs in a config with these values: its controllers are active and match."""
        for controller, values in (self.knobs[name].active_when or {}).items():
            if controller not in config or not _member(config[controller], values) \
                    or not self.is_active(controller, config):
                return False
        return True

    def active_config(self, config: Mapping[str, Any]) -> Config:
        """`config` without the knobs its own values make inactive (or that the space does not know), in space order."""
        return {name: config[name] for name in self.knobs if name in config and self.is_active(name, config)}

    def condition_text(self, name: str) -> str:
        """When knob `name` is active, in words ("model is hist_gb"); empty for an unconditional knob."""
        return " and ".join(f"{controller} is {' or '.join(str(v) for v in values)}"
                            for controller, values in (self.knobs[name].active_when or {}).items())

    def branches(self) -> list[Config]:
        """Every assignment of the controlling knobs, each deciding one set of active knobs (`[{}]` if none)."""
        out: list[Config] = [{}]
        for name in self.controllers:
            knob = self.knobs[name]
            assert isinstance(knob, CategoricalKnob)  # checked in __init__
            out = [branch for partial in out for branch in (
                [partial | {name: c} for c in knob.choices] if self.is_active(name, partial) else [partial])]
        return out

    def groups(self) -> list[list[str]]:
        """The knobs grouped by their condition, the unconditional ones first: what is active together.

        Optuna's TPE with ``group=True`` models each such group on the
        trials that hold it; the LGT candidates score configs the same way.
        """
        by_condition: dict[tuple[tuple[str, tuple[str, ...]], ...], list[str]] = {(): []}
        for knob in self.knobs.values():
            condition = tuple(sorted((c, tuple(repr(v) for v in values))
                                     for c, values in (knob.active_when or {}).items()))
            by_condition.setdefault(condition, []).append(knob.name)
        return [names for names in by_condition.values() if names]

    def defaults(self) -> Config:
        """Each knob's own default, for the knobs that declare one (the knobs of a conditional space do)."""
        return {name: knob.default for name, knob in self.knobs.items() if knob.default is not None}

    def key(self, config: Mapping[str, Any]) -> str:
        """`config_key` of the config's active knobs: two configs that train the same model get the same key."""
        return config_key(self.active_config(config))

    # --- Optuna ---------------------------------------------------------------------------------------

    def distributions(self, config: Mapping[str, Any] | None = None) -> dict[str, od.BaseDistribution]:
        """Optuna distributions of every knob, or of the knobs active in `config` (to record a trial it ran)."""
        names = list(self.knobs) if config is None else list(self.active_config(config))
        return {name: self.knobs[name].distribution() for name in names}

    def suggest(self, trial: BaseTrial) -> Config:
        """Ask `trial` for a config, define-by-run: each knob in space order, only when it is active.

        On a space without conditions this asks exactly what
        ``study.ask(space.distributions())`` asks, in the same order.
        """
        config: Config = {}
        for name, knob in self.knobs.items():
            if self.is_active(name, config):
                config[name] = knob.suggest(trial)
        return config

    def sample(self, rng: random.Random) -> Config:
        config: Config = {}
        for name, knob in self.knobs.items():
            if self.is_active(name, config):
                config[name] = knob.sample(rng)
        return config

    def describe(self) -> list[dict[str, Any]]:
        """Each knob as plain data for the agents and `lgt targets`.

        A conditional knob's range says when it applies ("...; only when
        model is hist_gb"), and it carries ``active_when`` and ``default``,
        so whoever reads the space sees which knobs belong to which family.
        """
        described = []
        for knob in self.knobs.values():
            entry = knob.describe()
            if knob.active_when:
                entry["range"] = f"{entry['range']}; only when {self.condition_text(knob.name)}"
                entry["active_when"] = {c: list(values) for c, values in knob.active_when.items()}
            if knob.default is not None:
                entry["default"] = knob.default
            described.append(entry)
        return described

    # --- validation -----------------------------------------------------------------------------------

    def validate(self, config: dict[str, Any], *, base: Config | None = None, strict: bool = True) -> Validated:
        """Check a (possibly partial) config and complete it from `base`.

        Strict mode raises UserError on the first problem; it is for configs
        a person wrote. Lenient mode drops unknown knobs, clips and snaps
        values into range, falls back to `base` for unreadable values, and
        lists every repair in `notes`; it is for LLM proposals.

        On a conditional space the result holds exactly the knobs its own
        values make active: a knob given but inactive is refused (strict) or
        dropped with a note (lenient), and an active knob not given is taken
        from `base`, else from the knob's default.
        """
        if not isinstance(config, dict):
            raise UserError(f"a config must be a JSON object of knob: value, got {type(config).__name__}")
        result = Validated(config={})
        given: Config = {}
        for name, value in config.items():
            knob = self.knobs.get(name)
            if knob is None:
                if strict:
                    raise UserError(f"unknown knob {shown(name)}; known knobs: {', '.join(self.knobs)}")
                result.dropped.append(name)
                result.notes.append(f"unknown knob {shown(name)} dropped")
                continue
            try:
                given[name] = knob.coerce(value)
            except _Repair as repair:
                if strict:
                    raise UserError(f"knob {name!r}: {repair.note.split(';')[0]}; allowed {knob.range_text()}") from None
                given[name] = repair.value
                result.notes.append(repair.note)
            except ValueError as exc:
                fallback = _fallback(knob, base)
                if strict or fallback is None:
                    raise UserError(f"knob {name!r}: {exc}; allowed {knob.range_text()}") from None
                result.notes.append(f"{name}: {exc}; kept {fallback!r}")
        values: Config = {}
        missing: list[str] = []
        for name, knob in self.knobs.items():
            if not self.is_active(name, values):
                if name in given:
                    why = self._inactive_reason(name, values)
                    if strict:
                        raise UserError(f"knob {name!r} {why}")
                    result.dropped.append(name)
                    result.notes.append(f"{name} dropped: it {why}")
                continue
            if name in given:
                values[name] = given[name]
            elif base is not None and name in base:
                values[name] = base[name]
            elif knob.default is not None:
                values[name] = knob.default
            else:
                missing.append(name)
        if missing:
            raise UserError(f"config is missing knobs: {', '.join(missing)}")
        result.config = values
        return result

    def _inactive_reason(self, name: str, values: Mapping[str, Any]) -> str:
        have = ", ".join(f"{c} {values[c]!r}" for c in (self.knobs[name].active_when or {}) if c in values)
        return f"applies only when {self.condition_text(name)}" + (f"; this config has {have}" if have else "")

    # --- grid -----------------------------------------------------------------------------------------

    def grid(self, default: Config, min_points: int) -> dict[str, list[Value]]:
        """Grid levels for the grid baseline.

        Knobs are taken in space order, each at its `grid_levels`, until the
        grid holds at least `min_points` points; the remaining knobs stay at
        their default (a one-value list). The first knob leaves out its
        default level, so no grid point repeats the default config. `grid_points` lists them
        in a seeded random order, so a budget smaller than the
        grid sees an unbiased subset of it. A conditional space has no single
        grid (its points do not share knobs): see `grid_points`.
        """
        if self.conditional:
            raise ValueError("a conditional space has a grid per branch; use grid_points()")
        return self._grid(list(self.knobs), default, min_points, skip_default=True)

    def _grid(self, names: list[str], base: Config, min_points: int, *, skip_default: bool) -> dict[str, list[Value]]:
        grid: dict[str, list[Value]] = {}
        size = 1
        for name in names:
            if size >= min_points:
                grid[name] = [base[name]]
                continue
            levels = self.knobs[name].grid_levels(base[name])
            if skip_default and not grid and len(levels) > 2:
                # Every method runs the default config first; leaving the default
                # level of the first knob out keeps the grid from running it twice.
                levels = [v for v in levels if v != base[name]]
            grid[name] = levels
            size *= len(levels)
        return grid

    def grid_points(self, default: Config, min_points: int, seed: int = 0) -> list[Config]:
        """The grid as a list of configs, in the order to visit them; per branch on a conditional space.

        Each branch (a value of `model`: one model family) gets its own grid
        over its active knobs, built as `grid` builds one, of at least
        `min_points / branches` points, and the branches take turns, each in
        a seeded random order: a budget smaller than the grid still sees
        every family. No point repeats the default config.
        """
        if not self.conditional:
            grid = self.grid(default, min_points)
            points = [dict(zip(grid, p, strict=True)) for p in itertools.product(*grid.values())]
            random.Random(seed).shuffle(points)
            return points
        branches = self.branches()
        share = max(1, math.ceil(min_points / len(branches)))
        rng = random.Random(seed)
        default_key = config_key(default)
        per_branch: list[list[Config]] = []
        for assignment in branches:
            base = self.validate(dict(assignment), base=default, strict=False).config
            names = [n for n in base if n not in self.controllers]
            grid = self._grid(names, base, share, skip_default=config_key(base) == default_key)
            points = [self.validate(base | dict(zip(grid, p, strict=True)), strict=True).config
                      for p in itertools.product(*grid.values())]
            points = [p for p in points if config_key(p) != default_key]
            rng.shuffle(points)
            per_branch.append(points)
        return [branch[i] for i in range(max(map(len, per_branch), default=0)) for branch in per_branch
                if i < len(branch)]

    # --- storage --------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """Everything needed to rebuild the space, for storage next to a run."""
        return json.dumps([knob_to_dict(k) for k in self.knobs.values()], indent=2)

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls([knob_from_dict(d) for d in json.loads(text)])


def _member(value: Any, choices: Sequence[Value]) -> bool:
    """`value in choices`, but True is not 1 and 1.0 is not 1: a categorical value matches by type too."""
    return any(value == c and type(value) is type(c) for c in choices)


def _fallback(knob: Knob, base: Config | None) -> Value | None:
    """What an unreadable value is replaced by in lenient mode: the base's value, else the knob's default."""
    if base is not None and knob.name in base:
        return base[knob.name]
    return knob.default


_KNOB_TYPES: dict[str, type[Knob]] = {"float": FloatKnob, "int": IntKnob, "categorical": CategoricalKnob}


def knob_to_dict(knob: Knob) -> dict[str, Any]:
    data = dataclasses.asdict(knob)
    data["type"] = type(knob).__name__.removesuffix("Knob").lower()
    if "choices" in data:
        data["choices"] = list(data["choices"])
    for optional in ("active_when", "default"):  # absent on unconditional knobs, as before conditions existed
        if data[optional] is None:
            del data[optional]
    if "active_when" in data:
        data["active_when"] = {c: list(values) for c, values in data["active_when"].items()}
    return data


def knob_from_dict(data: dict[str, Any]) -> Knob:
    fields = dict(data)
    knob_type = _KNOB_TYPES[fields.pop("type")]
    if "choices" in fields:
        fields["choices"] = tuple(fields["choices"])
    if fields.get("active_when") is not None:
        fields["active_when"] = {c: tuple(values) for c, values in fields["active_when"].items()}
    return knob_type(**fields)


def config_key(config: Config) -> str:
    """A canonical text form, so configs can be compared for "already run"."""
    rounded = {k: (round(v, 10) if isinstance(v, float) else v) for k, v in sorted(config.items())}
    return json.dumps(rounded, sort_keys=True)


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The knobs `after` sets to another value than `before`, as (before, after); before is None for a new knob.

    What a proposal changes, as the Advisor reads it and the change log
    shows it: `config_diff` without the knobs `after` turns off.
    """
    return {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}


def config_diff(before: Config, after: Config) -> dict[str, tuple[Value | None, Value | None]]:
    """Knobs whose value differs, as (before, after); a knob one config holds and the other does not shows None.

    On a conditional space switching `model` turns one family's knobs off
    (after: None) and another's on (before: None).
    """
    return config_changes(before, after) | {k: (before[k], None) for k in before if k not in after}
