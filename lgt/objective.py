"""A user's Optuna objective as the LGT loop sees it: knobs, a first config, and each trial's result.

The loop (`graphs.tuning`) was built around lgt's own targets; a user's
objective gives it the same things, read from Optuna: the knobs from the
distributions its `suggest_*` calls used (or `search_space=`), the first
config from the first trial, and a trial's result from the value it
returned and the values it reported with `trial.report` (its learning
curve). Nothing here trains: the objective does, in the user's process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from agents import diagnose, summarize_curve
from agents.records import TrialRecord
from lgt.direction import Direction, best_of
from tuning_targets import Config, SearchSpace
from tuning_targets.base import Target
from tuning_targets.space import CategoricalKnob, FloatKnob, IntKnob, Knob
from tuning_targets.stepping import ModelRun

NOTE_CHARS = 120  # a knob's note as the agents read it (`knob_notes=`)


def knob_of(name: str, distribution: BaseDistribution, note: str | None, default: Any) -> Knob:
    """An lgt knob for an Optuna distribution; `note` is what the agents read about it."""
    description = (note or f"a parameter of the objective ({type(distribution).__name__})")[:NOTE_CHARS]
    if isinstance(distribution, CategoricalDistribution):
        choices: tuple[Any, ...] = tuple(distribution.choices)  # Optuna allows None; lgt's knobs never get it
        return CategoricalKnob(name, "hyperparameters", description, choices=choices, default=default)
    if isinstance(distribution, IntDistribution):
        return IntKnob(name, "hyperparameters", description, low=distribution.low, high=distribution.high,
                       log=distribution.log, default=default)
    if isinstance(distribution, FloatDistribution):
        return FloatKnob(name, "hyperparameters", description, low=distribution.low, high=distribution.high,
                         log=distribution.log, default=default)
    raise TypeError(f"{name}: LGTSampler cannot sample a {type(distribution).__name__}")


def space_of(distributions: Mapping[str, BaseDistribution], notes: Mapping[str, str],
             defaults: Mapping[str, Any]) -> SearchSpace:
    """The search space of the knobs seen so far, each with the value the first config gave it."""
    return SearchSpace([knob_of(name, d, notes.get(name), _default(defaults.get(name), d))
                        for name, d in distributions.items()])


def _default(value: Any, distribution: BaseDistribution) -> Any:
    if value is not None:
        return fit(value, distribution)
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[0]
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    middle = math.sqrt(distribution.low * distribution.high) if distribution.log else \
        (distribution.low + distribution.high) / 2
    return fit(middle, distribution)


def fit(value: Any, distribution: BaseDistribution) -> Any:
    """`value` inside `distribution`: clipped, snapped to its step or to a choice, as the Python type Optuna keeps.

    Optuna silently draws again any value a sampler returns outside a
    distribution; the sampler returns only values that fit, so what the
    agents chose is what runs.
    """
    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if choice == value and type(choice) is type(value):
                return choice
        for choice in distribution.choices:
            if str(choice).lower() == str(value).lower():
                return choice
        return distribution.choices[0]
    assert isinstance(distribution, FloatDistribution | IntDistribution)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float(distribution.low)
    if not math.isfinite(number):
        number = float(distribution.low)
    number = min(max(number, float(distribution.low)), float(distribution.high))
    step = distribution.step
    if step is not None:
        number = float(distribution.low) + round((number - float(distribution.low)) / step) * step
        number = min(number, float(distribution.high))
    if isinstance(distribution, IntDistribution):
        return round(number)
    return float(number)


class ObjectiveTarget(Target):
    """The target the graph sees for a user's objective: its knobs and first config; it never trains itself."""

    name = "objective"
    task = "regression"  # unused: the objective's own metric and direction below decide

    def __init__(self, space: SearchSpace, default_config: Config, *, direction: Direction, metric: str,
                 description: str) -> None:  # no data to load, so no call to Target.__init__
        self.split_seed = 0
        self.space = space
        self.default_config = dict(default_config)
        self._direction: Direction = direction
        self._metric = metric
        self.description = description

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def direction(self) -> Direction:
        return self._direction

    def build_space(self) -> SearchSpace:
        return self.space

    def default_values(self) -> dict[str, Any]:
        return dict(self.default_config)

    def start_run(self, config: Config, *, seed: int = 0, device: Any = None) -> ModelRun:
        raise RuntimeError("an objective's trials run in its own code; LGTSampler only proposes them")

    def data_profile(self) -> dict[str, Any]:
        return {"description": self.description} if self.description else {}

    def data_summary(self) -> str:
        return self.description or "a user's objective"


def result_of(trial: FrozenTrial, state: TrialState, values: list[float] | None,
              direction: Direction = "maximize") -> dict[str, Any]:
    """A finished trial as the loop's result: its value, its curve from `trial.report`, its time.

    The curve holds the reported values as the validation metric of each
    step (losses unknown); numeric user attrs become extra metrics, which
    the Evaluator reads; a `test_metric` user attr is reported like lgt's own.
    """
    history = [{"epoch": int(step), "train_loss": math.nan, "val_loss": math.nan, "val_metric": float(value),
                "lr": math.nan, "seconds": math.nan}
               for step, value in sorted(trial.intermediate_values.items())]
    value = values[0] if values else None
    ok = state == TrialState.COMPLETE and value is not None and math.isfinite(value)
    reason = None if ok else _why(trial, state, value)
    extra = {k: float(v) for k, v in trial.user_attrs.items()
             if isinstance(v, int | float) and not isinstance(v, bool) and not k.startswith("lgt_") and k != "round"}
    started = trial.datetime_start or datetime.now()
    test = trial.user_attrs.get("test_metric")
    best = _best_step(history, direction)
    return {"status": "complete" if ok else "failed", "val_metric": float(value) if ok and value is not None else None,
            "test_metric": float(test) if isinstance(test, int | float) else None, "history": history,
            "fail_reason": reason, "best_epoch": best, "seconds": round((datetime.now() - started).total_seconds(), 3),
            "n_params": 0, "extra_metrics": extra}


def _best_step(history: list[dict[str, Any]], direction: Direction) -> int | None:
    """The step whose reported value was best (the earliest on ties), or None for a trial that reported none."""
    best = best_of([h for h in history if math.isfinite(h["val_metric"])], direction, lambda h: h["val_metric"])
    return None if best is None else int(best["epoch"])


def _why(trial: FrozenTrial, state: TrialState, value: float | None) -> str:
    if state == TrialState.PRUNED:
        last = max(trial.intermediate_values, default=None)
        return f"pruned{'' if last is None else f' at step {last}'}"
    if state == TrialState.COMPLETE:
        return f"the objective returned {value!r}, not a number"
    return "the objective raised an error or failed"


def record_of(trial: FrozenTrial, direction: Direction, metric: str) -> TrialRecord:
    """A trial that ran outside the loop's rounds (asked while another ran), as evidence the agents read."""
    result = result_of(trial, trial.state, trial.values, direction)
    record: TrialRecord = {
        "number": trial.number, "round": 0, "config": dict(trial.params), "source": "tpe",
        "changes": {}, "reasons": {}, "notes": ["asked while the round's trial ran: TPE's pick"],
        "status": result["status"], "val_metric": result["val_metric"], "fail_reason": result["fail_reason"],
        "history": result["history"], "best_epoch": None, "seconds": result["seconds"], "epochs_trained":
            len(result["history"]), "verdict": None}
    info = {"name": metric, "direction": direction}
    record["curve"] = summarize_curve(record["history"], info)
    record["diagnostics"] = dict(diagnose(record, info))
    return record


def learned(study: optuna.Study, given: Mapping[str, BaseDistribution] | None) -> dict[str, BaseDistribution]:
    """The search space: `given`, else every parameter finished trials used, each with its latest distribution."""
    if given:
        return dict(given)
    found: dict[str, BaseDistribution] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                          TrialState.FAIL)):
        found.update(trial.distributions)
    return found
