"""The search space: sampling, strict and lenient validation, Optuna, grid and JSON."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import optuna
import optuna.distributions as od
import pytest

from lgt.errors import UserError
from tuning_targets.registry import make_target
from tuning_targets.space import (
    DIMENSIONS,
    CategoricalKnob,
    Config,
    FloatKnob,
    IntKnob,
    SearchSpace,
    Value,
    config_diff,
    config_key,
)


def small_space() -> SearchSpace:
    """One knob of every kind and flavour, in the order the grid should spend its budget."""
    return SearchSpace([
        FloatKnob("learning_rate", "hyperparameters", "Step size.", low=1e-4, high=0.3, log=True, dynamic=True),
        CategoricalKnob("optimizer", "training", "Optimiser family.", choices=("sgd", "adam")),
        CategoricalKnob("batch_size", "hyperparameters", "Samples per step.", choices=(16, 32, 64, 128, 256)),
        IntKnob("epochs", "training", "Passes over the data.", low=1, high=30),
        IntKnob("hidden_units", "architecture", "Width.", low=8, high=512, log=True),
        FloatKnob("dropout", "architecture", "Dropout.", low=0.0, high=0.6),
        CategoricalKnob("batch_norm", "architecture", "Batch norm.", choices=(False, True)),
        CategoricalKnob("ratio", "features", "A float choice.", choices=(0.25, 0.5, 1.0)),
    ])


DEFAULT: Config = {"learning_rate": 0.01, "optimizer": "sgd", "batch_size": 64, "epochs": 3, "hidden_units": 64,
                   "dropout": 0.1, "batch_norm": False, "ratio": 1.0}


def spaces() -> list[tuple[str, SearchSpace]]:
    """Spaces without conditions: the tabular ones with the MLP alone, as every space was before model families.

    The conditional spaces (the tabular targets' default) are tested in test_conditional_space.py.
    """
    return [("small", small_space()), ("digits", make_target("digits").space),
            ("iris", make_target("iris", models="mlp").space), ("diabetes", make_target("diabetes", models="mlp").space)]


def assert_fits(space: SearchSpace, config: Config) -> None:
    assert list(config) == list(space.knobs)
    for name, value in config.items():
        knob = space.knobs[name]
        if isinstance(knob, FloatKnob):
            assert isinstance(value, float) and knob.low <= value <= knob.high, (name, value)
        elif isinstance(knob, IntKnob):
            assert type(value) is int and knob.low <= value <= knob.high, (name, value)
        else:
            assert isinstance(knob, CategoricalKnob)
            assert any(value == c and type(value) is type(c) for c in knob.choices), (name, value)


@pytest.mark.parametrize(("label", "space"), spaces(), ids=lambda v: v if isinstance(v, str) else "")
def test_samples_stay_in_range_and_pass_strict_validation(label: str, space: SearchSpace) -> None:
    rng = random.Random(7)
    seen: dict[str, set[Value]] = {name: set() for name in space.knobs}
    for _ in range(300):
        config = space.sample(rng)
        assert_fits(space, config)
        checked = space.validate(config, strict=True)
        assert checked.config == config and checked.notes == []
        for name, value in config.items():
            seen[name].add(value)
    for knob in space:
        if isinstance(knob, CategoricalKnob):
            assert seen[knob.name] == set(knob.choices), knob.name


def test_log_scale_sampling_is_uniform_in_log() -> None:
    knob = FloatKnob("learning_rate", "hyperparameters", "", low=1e-4, high=0.3, log=True)
    rng = random.Random(0)
    values = [float(knob.sample(rng)) for _ in range(4000)]
    below = sum(v < 1e-2 for v in values) / len(values)
    expected = (math.log(1e-2) - math.log(1e-4)) / (math.log(0.3) - math.log(1e-4))
    assert below == pytest.approx(expected, abs=0.04)
    linear = FloatKnob("x", "hyperparameters", "", low=1e-4, high=0.3)
    assert sum(float(linear.sample(rng)) < 1e-2 for _ in range(4000)) / 4000 < 0.1


def test_every_target_knob_is_described_in_the_four_dimensions() -> None:
    for label, space in spaces()[1:]:
        described = space.describe()
        json.dumps(described)  # agents read it as plain data
        assert {d["dimension"] for d in described} == set(DIMENSIONS), label
        for entry in described:
            assert entry["description"] and entry["range"], entry
            assert entry["type"] in ("float", "int", "categorical")


def test_duplicate_knob_names_are_refused() -> None:
    knob = IntKnob("epochs", "training", "", low=1, high=3)
    with pytest.raises(ValueError, match="duplicate"):
        SearchSpace([knob, knob])


# --- strict validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"lernrate": 0.1}, ["unknown knob 'lernrate'", "learning_rate"]),
    ({"learning_rate": "fast"}, ["'learning_rate'", "expected a number", "'fast'"]),
    ({"learning_rate": "0.1"}, ["'learning_rate'", "text, not a number"]),
    ({"dropout": True}, ["'dropout'", "expected a number"]),
    ({"dropout": None}, ["'dropout'", "expected a number"]),
    ({"dropout": math.nan}, ["'dropout'", "finite"]),
    ({"epochs": [3]}, ["'epochs'", "expected an integer"]),
    ({"epochs": "3"}, ["'epochs'", "text, not an integer"]),
    ({"learning_rate": 10}, ["'learning_rate'", "outside [0.0001, 0.3]"]),
    ({"dropout": -0.1}, ["'dropout'", "outside"]),
    ({"epochs": 2.5}, ["'epochs'", "not an integer"]),
    ({"epochs": 0}, ["'epochs'", "[1, 30]"]),
    ({"optimizer": "lbfgs"}, ["'optimizer'", "'lbfgs' is not a choice", 'allowed one of "sgd", "adam"']),
    ({"batch_size": 100}, ["'batch_size'", "not a choice", "16, 32, 64, 128, 256"]),
    ({"batch_size": "64"}, ["'batch_size'", "not one of the choices"]),
    ({"batch_norm": "true"}, ["'batch_norm'", "not one of the choices"]),
    ({"batch_norm": 1}, ["'batch_norm'", "1 is not a choice"]),
])
def test_strict_validation_refuses_with_one_clear_line(change: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(UserError) as caught:
        small_space().validate(DEFAULT | change, strict=True)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message, (fragment, message)


def test_strict_validation_accepts_json_numbers_of_either_kind() -> None:
    checked = small_space().validate(DEFAULT | {"learning_rate": 0.1, "dropout": 0, "epochs": 4.0}, strict=True)
    assert checked.notes == []
    assert checked.config["dropout"] == 0.0 and isinstance(checked.config["dropout"], float)
    assert checked.config["epochs"] == 4 and type(checked.config["epochs"]) is int


def test_missing_knobs_need_a_base() -> None:
    space = small_space()
    partial = {"learning_rate": 0.05, "epochs": 5}
    with pytest.raises(UserError, match="missing knobs: optimizer, batch_size, hidden_units, dropout"):
        space.validate(partial, strict=True)
    with pytest.raises(UserError, match="missing knobs"):
        space.validate(partial, strict=False)
    completed = space.validate(partial, base=DEFAULT, strict=True)
    assert completed.config == DEFAULT | partial
    assert list(completed.config) == list(space.knobs)


def test_a_config_must_be_an_object() -> None:
    with pytest.raises(UserError, match="JSON object"):
        small_space().validate([("epochs", 3)], strict=True)  # type: ignore[arg-type]


# --- lenient validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "name", "expected"), [
    ({"learning_rate": 10}, "learning_rate", 0.3),
    ({"learning_rate": 1e-9}, "learning_rate", 1e-4),
    ({"learning_rate": "0.05"}, "learning_rate", 0.05),
    ({"learning_rate": "5"}, "learning_rate", 0.3),
    ({"dropout": 0.9}, "dropout", 0.6),
    ({"epochs": 2.6}, "epochs", 3),
    ({"epochs": 99}, "epochs", 30),
    ({"epochs": "4"}, "epochs", 4),
    ({"hidden_units": 3}, "hidden_units", 8),
    ({"batch_size": "64"}, "batch_size", 64),
    ({"batch_size": 100}, "batch_size", 128),
    ({"batch_size": 20}, "batch_size", 16),
    ({"batch_size": 1000.0}, "batch_size", 256),
    ({"batch_norm": "true"}, "batch_norm", True),
    ({"batch_norm": " False "}, "batch_norm", False),
    ({"optimizer": "ADAM"}, "optimizer", "adam"),
    ({"ratio": "0.5"}, "ratio", 0.5),
    ({"ratio": 0.3}, "ratio", 0.25),
])
def test_lenient_validation_repairs_and_says_so(change: dict[str, Any], name: str, expected: Value) -> None:
    checked = small_space().validate(change, base=DEFAULT, strict=False)
    value = checked.config[name]
    assert value == pytest.approx(expected) and type(value) is type(expected)
    assert len(checked.notes) == 1 and name in checked.notes[0]
    assert checked.config == DEFAULT | {name: value}
    assert_fits(small_space(), checked.config)


def test_lenient_validation_drops_unknown_knobs() -> None:
    checked = small_space().validate({"lernrate": 0.1, "learning_rate": 0.02, "weight_decay": 1e-4},
                                     base=DEFAULT, strict=False)
    assert checked.dropped == ["lernrate", "weight_decay"]
    assert all("dropped" in note for note in checked.notes) and len(checked.notes) == 2
    assert checked.config == DEFAULT | {"learning_rate": 0.02}


def test_lenient_validation_keeps_base_for_unreadable_values() -> None:
    checked = small_space().validate({"learning_rate": "fast", "epochs": None, "optimizer": "lbfgs", "dropout": 0.2},
                                     base=DEFAULT, strict=False)
    assert checked.config == DEFAULT | {"dropout": 0.2}
    assert len(checked.notes) == 3
    assert any("learning_rate" in n and "kept 0.01" in n for n in checked.notes)
    with pytest.raises(UserError, match="'learning_rate'"):
        small_space().validate(DEFAULT | {"learning_rate": "fast"}, strict=False)


def test_lenient_validation_leaves_a_valid_config_alone() -> None:
    checked = small_space().validate(DEFAULT, base=DEFAULT, strict=False)
    assert checked.config == DEFAULT and checked.notes == [] and checked.dropped == []


# --- Optuna ----------------------------------------------------------------------------------------------

def test_knobs_convert_to_optuna_distributions() -> None:
    dists = small_space().distributions()
    assert list(dists) == list(small_space().knobs)
    assert dists["learning_rate"] == od.FloatDistribution(1e-4, 0.3, log=True)
    assert dists["dropout"] == od.FloatDistribution(0.0, 0.6)
    assert dists["epochs"] == od.IntDistribution(1, 30)
    assert dists["hidden_units"] == od.IntDistribution(8, 512, log=True)
    assert dists["batch_size"] == od.CategoricalDistribution((16, 32, 64, 128, 256))
    assert dists["batch_norm"] == od.CategoricalDistribution((False, True))


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)],
                         ids=["random", "tpe"])
def test_optuna_samples_pass_strict_validation(sampler: optuna.samplers.BaseSampler) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = make_target("digits").space
    study = optuna.create_study(sampler=sampler)
    for i in range(15):
        trial = study.ask(fixed_distributions=space.distributions())
        checked = space.validate(trial.params, strict=True)
        assert checked.notes == [] and checked.config == {n: trial.params[n] for n in space.knobs}
        study.tell(trial, float(i))


# --- grid ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("min_points", [1, 2, 3, 10, 50, 400, 10**9])
def test_grid_reaches_min_points_with_the_rest_at_default(min_points: int) -> None:
    space = small_space()
    grid = space.grid(DEFAULT, min_points)
    assert list(grid) == list(space.knobs)
    sizes = [len(levels) for levels in grid.values()]
    expanded = [name for name, levels in grid.items() if levels != [DEFAULT[name]]]
    # Knobs are expanded in space order and the rest stay at their default.
    assert expanded == list(space.knobs)[:len(expanded)]
    first = space.knobs["learning_rate"].grid_levels(DEFAULT["learning_rate"])
    largest = (len(first) - 1) * math.prod(len(k.grid_levels(DEFAULT[k.name])) for k in list(space)[1:])
    assert math.prod(sizes) >= min(min_points, largest)
    if expanded:
        assert math.prod(sizes[:len(expanded) - 1]) < min_points, "one knob more than needed was expanded"
    for name, levels in grid.items():
        for level in levels:
            assert space.validate(DEFAULT | {name: level}, strict=True).notes == []
        if name in expanded[1:] or name not in expanded:
            assert DEFAULT[name] in levels
    if expanded:
        # The first knob leaves its default out, so no grid point repeats the default config
        # that every method runs first.
        assert grid["learning_rate"] == [v for v in first if v != DEFAULT["learning_rate"]]
        assert DEFAULT not in [dict(zip(grid, point)) for point in itertools.product(*grid.values())]


def test_grid_levels_per_kind() -> None:
    space = small_space()
    assert space.knobs["learning_rate"].grid_levels(0.01) == pytest.approx([0.001, 0.01, 0.1])
    assert space.knobs["learning_rate"].grid_levels(0.2) == pytest.approx([0.02, 0.2, 0.3])
    assert space.knobs["dropout"].grid_levels(0.1) == [0.0, 0.1, 0.6]
    assert space.knobs["epochs"].grid_levels(3) == [1, 3, 30]
    assert space.knobs["batch_size"].grid_levels(64) == [16, 32, 64, 128, 256]


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """What an objective function does with the space: one suggest call per knob."""
    params: dict[str, Any] = {}
    for name, dist in space.distributions().items():
        if isinstance(dist, od.FloatDistribution):
            params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        elif isinstance(dist, od.IntDistribution):
            params[name] = trial.suggest_int(name, dist.low, dist.high, log=dist.log)
        else:
            assert isinstance(dist, od.CategoricalDistribution)
            params[name] = trial.suggest_categorical(name, dist.choices)
    return params


def test_grid_drives_optuna_grid_sampler() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = small_space()
    grid = space.grid(DEFAULT, 20)
    n_points = math.prod(len(v) for v in grid.values())
    points: set[str] = set()

    def objective(trial: optuna.Trial) -> float:
        points.add(config_key(space.validate(suggest(trial, space), strict=True).config))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    study.optimize(objective, n_trials=n_points + 5)
    assert len(study.trials) == n_points
    assert points == {config_key(DEFAULT | dict(zip(grid, p))) for p in itertools.product(*grid.values())}


# --- JSON ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "space"), spaces(), ids=lambda v: v if isinstance(v, str) else "")
def test_space_json_round_trip(label: str, space: SearchSpace) -> None:
    text = space.to_json()
    rebuilt = SearchSpace.from_json(text)
    assert list(rebuilt.knobs) == list(space.knobs)
    for name, knob in space.knobs.items():
        assert rebuilt.knobs[name] == knob and type(rebuilt.knobs[name]) is type(knob)
    assert rebuilt.describe() == space.describe()
    assert rebuilt.distributions() == space.distributions()
    assert rebuilt.to_json() == text
    rng_a, rng_b = random.Random(3), random.Random(3)
    assert [space.sample(rng_a) for _ in range(20)] == [rebuilt.sample(rng_b) for _ in range(20)]


def test_config_json_round_trip_keeps_types() -> None:
    space = small_space()
    rng = random.Random(11)
    for _ in range(50):
        config = space.sample(rng)
        back = json.loads(json.dumps(config))
        checked = space.validate(back, strict=True)
        assert checked.notes == []
        assert checked.config == config
        assert [type(v) for v in checked.config.values()] == [type(v) for v in config.values()]
        assert config_key(checked.config) == config_key(config)


def test_config_key_is_canonical() -> None:
    reordered = dict(reversed(list(DEFAULT.items())))
    assert config_key(reordered) == config_key(DEFAULT)
    assert config_key(DEFAULT | {"learning_rate": 0.01 + 1e-13}) == config_key(DEFAULT)
    assert config_key(DEFAULT | {"learning_rate": 0.011}) != config_key(DEFAULT)
    assert config_key(DEFAULT | {"batch_norm": True}) != config_key(DEFAULT)


def test_config_diff_lists_changed_knobs_only() -> None:
    after = DEFAULT | {"learning_rate": 0.1, "batch_norm": True}
    assert config_diff(DEFAULT, after) == {"learning_rate": (0.01, 0.1), "batch_norm": (False, True)}
    assert config_diff(DEFAULT, DEFAULT) == {}
