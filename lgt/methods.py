"""Every tuning method lgt knows, one record each.

A method is a name plus how it proposes configs (an Optuna sampler and
pruner, or the LGT agents) plus how people see it (table label, the words
used in a sentence, a plot colour, a line of CLI help). The CLI, the bench,
the reports and the plots all read this registry, so a new method is one
entry in `METHODS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from lgt.errors import UserError
from lgt.optuna_private import was_queued
from lgt.vocabulary import PROPOSERS, Proposer
from tuning_targets import Config, Target

SamplerFactory = Callable[[Target, int, int], optuna.samplers.BaseSampler]  # (target, seed, budget)
PrunerFactory = Callable[[Target, int], optuna.pruners.BasePruner]  # (target, budget)


def startup_trials(budget: int) -> int:
    """Random trials before a model-based sampler starts modelling.

    Optuna's default of 10 would leave TPE and GP almost no modelled
    trials on the small budgets used here; a third of the budget keeps
    them honest on short runs and equals the default from 30 trials up.
    """
    return max(2, min(10, budget // 3))


def tpe_sampler(target: Target, seed: int, budget: int) -> optuna.samplers.TPESampler:
    """The TPE every TPE-based method uses, the LGT agents' candidate 0 included.

    Multivariate: it models the knobs jointly. On a conditional space (the
    tabular targets' model families) it also decomposes the space into the
    groups of knobs that occur together (``group=True``): `model` and the
    feature knobs from every trial, each family's knobs from that family's
    trials, instead of sampling every family knob independently. On a space
    without conditions it is exactly the TPE of before.
    """
    if not target.space.conditional:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(budget), multivariate=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # `group`, experimental since 2.8
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(budget), multivariate=True,
                                          group=True)


def _gp_sampler(target: Target, seed: int, budget: int) -> optuna.samplers.BaseSampler:
    """Optuna's GP. On a conditional space it models the knobs every trial holds (`model` and the features)
    and draws a family's own knobs at random: a Gaussian process wants one fixed set of inputs."""
    if not target.space.conditional:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(budget))
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(budget),
                                     warn_independent_sampling=False)


def _grid_sampler(target: Target, seed: int, budget: int) -> optuna.samplers.BaseSampler:
    """The grid spans the first knobs of the space (most influential first), a few levels each.

    It grows until it holds at least `budget` points; the rest of the knobs
    stay at their defaults. The points are visited in a seeded random order,
    so a truncated grid is an unbiased subset of it; a conditional space gets
    one such grid per model family, the families taking turns
    (`SearchSpace.grid_points`). `PointsSampler` visits them in that order,
    which every worker of the study rebuilds from the study's seed.
    """
    return PointsSampler(target.space.grid_points(target.default_config, budget, seed), seed=seed)


class PointsSampler(optuna.samplers.BaseSampler):
    """Visits a list of configs, one per trial, in order: a grid whose points need not share knobs.

    Optuna's GridSampler spans one product of levels over a fixed set of
    parameters; a conditional space's grid is a product per model family,
    and a point of one family holds none of another's knobs. A trial takes
    the point at its place among the study's trials that asked the sampler
    (trials out of the queue, such as the shared default config or a retry,
    do not), wrapping around after the last point. The place follows from
    trial numbers, which the storage hands out one by one, so several
    workers on one study never draw the same point while another is unseen
    (Optuna's GridSampler, which looks for points no trial has taken yet,
    can), and a resumed run goes on where it stopped.
    """

    def __init__(self, points: Sequence[Config], *, seed: int | None = None) -> None:
        self._points = [dict(p) for p in points]
        self._assigned: dict[int, int] = {}  # trial number -> point index, while the trial runs here
        self._fallback = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not self._points:
            return
        place = sum(1 for other in study.get_trials(deepcopy=False)
                    if other.number < trial.number and not was_queued(other))
        self._assigned[trial.number] = place % len(self._points)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        index = self._assigned.get(trial.number)
        if index is None or param_name not in self._points[index]:
            return self._fallback.sample_independent(study, trial, param_name, param_distribution)
        return self._points[index][param_name]

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: optuna.trial.TrialState,
                    values: Sequence[float] | None) -> None:
        self._assigned.pop(trial.number, None)


def _random_sampler(target: Target, seed: int, budget: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


# Pruners see a trial's steps (`tuning_targets.stepping`): an MLP's epochs, a hist_gb run's stages of
# boosting iterations (`families.STAGE_ITERATIONS` each), and the single step of a random forest or a
# linear model, which reports once, fully trained, and is never stopped. Across model families a step
# is a different amount of work; the pruners compare values at the same step number regardless.

def _median_pruner(target: Target, budget: int) -> optuna.pruners.BasePruner:
    """Stop a trial whose step is below the median of earlier trials at that step (after the startup trials)."""
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials(budget), n_warmup_steps=1)


def _hyperband_pruner(target: Target, budget: int) -> optuna.pruners.BasePruner:
    """Successive halving over steps, from 1 to the most steps a config of the space trains, in brackets.

    The resource is the step: epochs for the MLP and the CNN, boosting
    stages for hist_gb (the space's most: its max_iter over the stage size).
    """
    return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(2, target.max_steps()),
                                          reduction_factor=3)


@dataclass(frozen=True)
class Method:
    """One way of tuning, and how it is shown.

    Exactly one of `sampler` (a classic Optuna method) and `proposer` (the
    LGT agents; the value names the graph's proposer) is set.
    """

    name: str
    label: str  # in tables and legends
    prose: str  # inside a sentence
    colour: str  # in every plot
    help: str  # one line for `lgt --help`
    sampler: SamplerFactory | None = None
    pruner: PrunerFactory | None = None
    proposer: Proposer | None = None
    runs_once: bool = False  # the untuned default: one trial whatever the budget
    # The sampler draws at random, so each worker of a study needs a seed of its own (with one seed, parallel
    # TPE/random workers would all draw the same startup configs); the grid's order must be the study's instead.
    draws: bool = True

    @property
    def is_agents(self) -> bool:
        return self.proposer is not None

    @property
    def prunes(self) -> bool:
        """Stops poor trials between epochs: the classical counterpart of `lgt tune --adapt epoch`."""
        return self.pruner is not None

    def budget(self, trials: int) -> int:
        return 1 if self.runs_once else trials

    def make_sampler(self, target: Target, seed: int, budget: int, *,
                     worker: int | None = None) -> optuna.samplers.BaseSampler:
        """The sampler of a run seeded `seed`; `worker` (a process id) sets apart the draws of one of its workers."""
        if self.sampler is None:
            raise ValueError(f"{self.name} proposes with the LGT agents, not an Optuna sampler")
        if worker is not None and self.draws:
            seed = (seed * 100_003 + worker) % (2**32)
        return self.sampler(target, seed, budget)

    def make_pruner(self, target: Target, budget: int) -> optuna.pruners.BasePruner:
        return self.pruner(target, budget) if self.pruner else optuna.pruners.NopPruner()


# The order is the order of every table and legend.
METHODS: tuple[Method, ...] = (
    Method("lgt", "LGT", "LGT", "#d62728",
           "the LGT agents; the Advisor chooses among TPE's candidates, a gate keeps TPE's pick when its choices do "
           "worse", proposer="hybrid"),
    Method("lgt-llm", "LGT (free proposals)", "LGT with free LLM proposals", "#ff9896",
           "the LGT agents; the Advisor proposes freely (LGT before the TPE anchor)", proposer="llm"),
    Method("lgt-tpe", "LGT (TPE proposer)", "LGT with TPE's picks only", "#c5b0d5",
           "the LGT loop with TPE's pick every round and no LLM choice", proposer="tpe"),
    Method("tpe", "TPE", "TPE", "#1f77b4", "Optuna's TPE (Bayesian)", sampler=tpe_sampler),
    Method("tpe-median", "TPE + median pruning", "TPE with median pruning", "#8c564b",
           "TPE; trials below the median at an epoch stop", sampler=tpe_sampler, pruner=_median_pruner),
    Method("tpe-hyperband", "TPE + Hyperband", "TPE with Hyperband", "#e377c2",
           "TPE; Hyperband stops trials between epochs", sampler=tpe_sampler, pruner=_hyperband_pruner),
    Method("gp", "GP", "GP", "#2ca02c", "Optuna's Gaussian-process sampler", sampler=_gp_sampler),
    Method("grid", "Grid", "grid search", "#ff7f0e", "a grid over the first knobs of the space",
           sampler=_grid_sampler, draws=False),
    Method("random", "Random", "random search", "#9467bd", "random search", sampler=_random_sampler),
    Method("default", "Default (untuned)", "the untuned default", "#7f7f7f", "the untuned default config, once",
           sampler=_random_sampler, runs_once=True),
)
# Colours for a method this registry does not know (a study written by another version).
_SPARE_COLOURS = ("#bcbd22", "#17becf", "#393b79", "#637939")


def get(name: str) -> Method:
    """The method called `name`; a one-line UserError listing the choices otherwise."""
    method = find(name)
    if method is None:
        raise UserError(f"unknown method {name!r}; choose one of: {', '.join(names())}")
    return method


def find(name: str) -> Method | None:
    """The method, or None for a name read from a study this version does not know."""
    return next((m for m in METHODS if m.name == name), None)


def by_proposer(proposer: str) -> Method:
    """The agents method that proposes this way (`lgt.vocabulary.PROPOSERS`)."""
    for method in METHODS:
        if method.proposer == proposer:
            return method
    raise UserError(f"unknown proposer {proposer!r}; choose one of: {', '.join(PROPOSERS)}")


def names(*, agents: bool | None = None) -> tuple[str, ...]:
    """Method names in registry order; `agents` True/False keeps only the LGT/classic ones."""
    return tuple(m.name for m in METHODS if agents is None or m.is_agents == agents)


def rank(name: str) -> tuple[int, str]:
    """Sort key: registry order, unknown names last and alphabetical."""
    order = names()
    return (order.index(name), "") if name in order else (len(order), name)


def is_agents(name: str) -> bool:
    """Whether the method (by name, as stored on a study) is tuned by the LGT agents."""
    method = find(name)
    return method is not None and method.is_agents


def label(name: str) -> str:
    method = find(name)
    return method.label if method else name


def prose(name: str) -> str:
    method = find(name)
    return method.prose if method else name


def colour(name: str) -> str:
    method = find(name)
    if method:
        return method.colour
    return _SPARE_COLOURS[sum(map(ord, name)) % len(_SPARE_COLOURS)]


def help_text(*, agents: bool | None = None) -> str:
    """`name: help` for each method, for argparse."""
    return "; ".join(f"{m.name}: {m.help}" for m in METHODS if agents is None or m.is_agents == agents)
