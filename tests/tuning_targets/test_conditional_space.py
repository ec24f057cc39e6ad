"""Conditional search spaces: knobs that exist only for one model family, and every tool that reads a space.

A small hand-made space checks the rules; the tabular targets' real space
(`model` first, each family's knobs under it) checks that no inactive knob
ever reaches a config, whoever makes it: validation, sampling, Optuna's
define-by-run samplers and the grid.
"""

from __future__ import annotations

import json
import random
import warnings
from typing import Any

import optuna
import optuna.distributions as od
import pytest

from lgt.errors import UserError
from tuning_targets.registry import make_target
from tuning_targets.space import CategoricalKnob, Config, FloatKnob, IntKnob, SearchSpace, config_diff, config_key

FAMILIES = ("mlp", "hist_gb", "random_forest", "linear")


def small_space() -> SearchSpace:
    """Two families of one knob each, a knob for one family only, and one shared knob."""
    return SearchSpace([
        CategoricalKnob("model", "architecture", "Family.", choices=("net", "trees"), default="net"),
        FloatKnob("lr", "hyperparameters", "Net step size.", low=1e-3, high=1.0, log=True,
                  active_when={"model": ("net",)}, default=0.01),
        IntKnob("trees", "architecture", "Tree count.", low=10, high=100, active_when={"model": ("trees",)},
                default=50),
        CategoricalKnob("depth", "architecture", "Tree depth.", choices=(2, 4, 8), active_when={"model": ("trees",)},
                        default=4),
        FloatKnob("scale", "features", "Shared.", low=0.0, high=1.0, default=0.5),
    ])


NET: Config = {"model": "net", "lr": 0.01, "scale": 0.5}


def iris_space() -> SearchSpace:
    return make_target("iris").space


def assert_only_active(space: SearchSpace, config: dict[str, Any]) -> None:
    """Every active knob present, nothing else, in space order, and strict validation changes nothing."""
    assert list(config) == list(space.active_config(config)), config
    checked = space.validate(dict(config), strict=True)
    assert checked.config == config and checked.notes == []


# --- the rules ---------------------------------------------------------------------------------------------

def test_a_condition_must_name_an_earlier_categorical_knob_and_its_choices() -> None:
    shared = FloatKnob("scale", "features", "", low=0.0, high=1.0)
    family = CategoricalKnob("model", "architecture", "", choices=("net", "trees"))
    later = IntKnob("trees", "architecture", "", low=1, high=3, active_when={"model": ("trees",)})
    with pytest.raises(ValueError, match="categorical knob listed before it"):
        SearchSpace([later, family])
    with pytest.raises(ValueError, match="categorical knob listed before it"):
        SearchSpace([shared, IntKnob("n", "architecture", "", low=1, high=3, active_when={"scale": (0.5,)})])
    with pytest.raises(ValueError, match="not all among its choices"):
        SearchSpace([family, IntKnob("n", "architecture", "", low=1, high=3, active_when={"model": ("forest",)})])
    assert SearchSpace([family, later]).conditional and not SearchSpace([shared]).conditional


def test_validation_keeps_only_the_active_knobs_and_fills_the_new_family_from_its_defaults() -> None:
    space = small_space()
    switched = space.validate({"model": "trees"}, base=NET, strict=False)
    # The net's lr goes, the trees' knobs come with their defaults, the shared knob keeps the base's value.
    assert switched.config == {"model": "trees", "trees": 50, "depth": 4, "scale": 0.5}
    assert switched.notes == []
    lenient = space.validate({"model": "trees", "lr": 0.1, "trees": 70}, base=NET, strict=False)
    assert lenient.config == {"model": "trees", "trees": 70, "depth": 4, "scale": 0.5}
    assert lenient.dropped == ["lr"]
    assert lenient.notes == ["lr dropped: it applies only when model is net; this config has model 'trees'"]


def test_strict_validation_refuses_an_inactive_knob_in_one_line() -> None:
    with pytest.raises(UserError) as caught:
        small_space().validate({"model": "trees", "lr": 0.1, "trees": 20, "depth": 2, "scale": 0.1}, strict=True)
    assert str(caught.value) == "knob 'lr' applies only when model is net; this config has model 'trees'"
    with pytest.raises(UserError, match="config is missing knobs: scale"):
        SearchSpace([CategoricalKnob("model", "architecture", "", choices=("a", "b")),
                     FloatKnob("scale", "features", "", low=0.0, high=1.0)]).validate({"model": "a"}, strict=True)


def test_an_unreadable_value_falls_back_to_the_knobs_default_when_the_base_lacks_it() -> None:
    checked = small_space().validate({"model": "trees", "trees": "many"}, base=NET, strict=False)
    assert checked.config["trees"] == 50
    assert checked.notes == ["trees: expected an integer, got 'many'; kept 50"]


def test_distributions_key_and_diff_follow_the_config() -> None:
    space = small_space()
    trees = {"model": "trees", "trees": 20, "depth": 2, "scale": 0.1}
    assert list(space.distributions()) == ["model", "lr", "trees", "depth", "scale"]
    assert space.distributions(trees) == {"model": od.CategoricalDistribution(("net", "trees")),
                                          "trees": od.IntDistribution(10, 100),
                                          "depth": od.CategoricalDistribution((2, 4, 8)),
                                          "scale": od.FloatDistribution(0.0, 1.0)}
    # A stray inactive knob does not make a different config.
    assert space.key(trees | {"lr": 0.3}) == config_key(trees)
    assert config_diff(NET, trees) == {"model": ("net", "trees"), "trees": (None, 20), "depth": (None, 2),
                                       "scale": (0.5, 0.1), "lr": (0.01, None)}


def test_branches_and_groups() -> None:
    space = small_space()
    assert space.branches() == [{"model": "net"}, {"model": "trees"}]
    assert space.groups() == [["model", "scale"], ["lr"], ["trees", "depth"]]
    assert SearchSpace([FloatKnob("x", "features", "", low=0.0, high=1.0)]).branches() == [{}]


def test_describe_says_which_family_each_knob_belongs_to() -> None:
    described = {d["name"]: d for d in iris_space().describe()}
    json.dumps(list(described.values()))
    assert described["model"]["choices"] == list(FAMILIES) and "active_when" not in described["model"]
    assert described["max_leaf_nodes"]["active_when"] == {"model": ["hist_gb"]}
    assert described["max_leaf_nodes"]["range"] == "[4, 256] log-scale; only when model is hist_gb"
    assert described["hidden_units"]["range"].endswith("; only when model is mlp")
    assert described["C"]["range"].endswith("; only when model is linear") and described["C"]["default"] == 1.0
    assert "active_when" not in described["scaler"] and described["scaler"]["default"] == "standard"
    families = {d["active_when"]["model"][0] for d in described.values() if "active_when" in d}
    assert families == set(FAMILIES)


def test_a_conditional_space_survives_json() -> None:
    space = iris_space()
    rebuilt = SearchSpace.from_json(space.to_json())
    assert rebuilt.to_json() == space.to_json() and rebuilt.describe() == space.describe()
    assert all(rebuilt.knobs[n] == k for n, k in space.knobs.items())
    rng_a, rng_b = random.Random(1), random.Random(1)
    assert [space.sample(rng_a) for _ in range(20)] == [rebuilt.sample(rng_b) for _ in range(20)]


# --- the tabular space: no inactive knob from any source ------------------------------------------------

@pytest.mark.parametrize("name", ["iris", "diabetes"])
def test_samples_hold_exactly_their_familys_knobs(name: str) -> None:
    space = make_target(name).space
    rng = random.Random(5)
    seen = set()
    for _ in range(200):
        config = space.sample(rng)
        assert_only_active(space, config)
        seen.add(config["model"])
    assert seen == set(FAMILIES)


def test_every_family_config_from_validation_holds_its_own_knobs_only() -> None:
    target = make_target("breast_cancer")
    space = target.space
    for family in FAMILIES:
        config = space.validate({"model": family}, base=target.default_config, strict=False).config
        assert_only_active(space, config)
        own = {d["name"] for d in space.describe() if d.get("active_when", {}).get("model") == [family]}
        shared = {d["name"] for d in space.describe() if "active_when" not in d}
        assert set(config) == own | shared


@pytest.mark.parametrize("sampler", ["random", "tpe-group", "gp"])
def test_optuna_define_by_run_asks_only_for_active_knobs(sampler: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = iris_space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        chosen = {"random": optuna.samplers.RandomSampler(seed=0),
                  "tpe-group": optuna.samplers.TPESampler(seed=0, n_startup_trials=4, multivariate=True, group=True),
                  "gp": optuna.samplers.GPSampler(seed=0, n_startup_trials=4)}[sampler]
    study = optuna.create_study(sampler=chosen)
    families = set()
    for i in range(12):
        trial = study.ask()
        config = space.suggest(trial)
        assert trial.params == config and trial.distributions == space.distributions(config)
        assert_only_active(space, config)
        families.add(config["model"])
        study.tell(trial, float(i % 5))
    assert len(families) >= 2


def test_suggest_asks_what_fixed_distributions_ask_on_a_space_without_conditions() -> None:
    """Define-by-run and `ask(distributions)` draw the same configs: the baselines stay what they were."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = make_target("iris", models="mlp").space
    fixed = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=4, n_startup_trials=3, multivariate=True))
    by_run = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=4, n_startup_trials=3, multivariate=True))
    for i in range(8):
        a = fixed.ask(space.distributions())
        b = by_run.ask()
        assert space.suggest(b) == a.params
        fixed.tell(a, float(i * 7 % 5))
        by_run.tell(b, float(i * 7 % 5))


def test_the_grid_of_a_conditional_space_takes_every_family_in_turn() -> None:
    target = make_target("wine")
    space = target.space
    points = space.grid_points(target.default_config, 24, seed=3)
    assert len(points) >= 24
    assert [p["model"] for p in points[:4]] == list(FAMILIES)
    assert len({config_key(p) for p in points}) == len(points)
    assert config_key(target.default_config) not in {config_key(p) for p in points}
    for point in points:
        assert_only_active(space, point)
    # Each family varies its own first knobs; the MLP's grid starts where the grid always started.
    mlp = [p for p in points if p["model"] == "mlp"]
    assert sorted({p["learning_rate"] for p in mlp}) == pytest.approx([0.001, 0.1])  # the default 0.01 left out
    assert {p["optimizer"] for p in mlp} == {"sgd", "adam", "adamw", "rmsprop"}
    gb = [p for p in points if p["model"] == "hist_gb"]
    assert sorted({p["gb_learning_rate"] for p in gb}) == pytest.approx([0.01, 0.1, 1.0])
    assert points == space.grid_points(target.default_config, 24, seed=3)
    assert points != space.grid_points(target.default_config, 24, seed=4)
