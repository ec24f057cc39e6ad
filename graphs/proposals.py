"""Turning an Advisor's untrusted proposal into a config that may train.

The LLM's output is treated like any other untrusted input: unknown knobs
are dropped, values are clipped or snapped into range, a config that was
already run is refused. When the Advisor cannot produce anything usable,
Optuna's TPE suggests the round's config instead, so a round never stalls.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import optuna

from tuning_targets import Config, SearchSpace, config_key


@dataclass
class Candidate:
    """A config ready to train, with where it came from and why."""

    config: Config
    source: str
    changes: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    expected_effect: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def apply_proposal(space: SearchSpace, base: Config, changes: list[dict[str, Any]]) -> tuple[Config, dict[str, Any],
                                                                                           dict[str, str], list[str]]:
    """Apply the proposed changes to `base`, repairing what does not fit the space.

    Returns the config, the changes actually applied, the reasons for them
    and notes on every repair (to show the Advisor next time).
    """
    raw = {c["knob"]: c["value"] for c in changes}
    reasons = {c["knob"]: str(c.get("reason", "")) for c in changes if c["knob"] in space}
    checked = space.validate(raw, base=base, strict=False)
    applied = {k: checked.config[k] for k in raw if k in space and checked.config[k] != base[k]}
    return checked.config, applied, {k: reasons[k] for k in applied if k in reasons}, checked.notes


def perturb(space: SearchSpace, config: Config, tried: set[str], rng: random.Random) -> tuple[Config, list[str]]:
    """Nudge a repeated config into an untried one by resampling one knob, then more."""
    knobs = list(space.knobs)
    for attempt in range(1, 50):
        candidate = dict(config)
        names = rng.sample(knobs, k=min(len(knobs), 1 + attempt // 10))
        for name in names:
            candidate[name] = space.knobs[name].sample(rng)
        candidate = space.validate(candidate, strict=False).config
        if config_key(candidate) not in tried:
            return candidate, names
    return space.sample(rng), knobs


def tpe_suggestion(space: SearchSpace, trials: Sequence[Mapping[str, Any]], direction: Literal["maximize", "minimize"],
                   seed: int,
                   tried: set[str]) -> Config:
    """What Optuna's TPE would try next given the trials so far.

    An in-memory study mirrors the run's trials, so asking TPE leaves no
    half-made trial in the run's own study.
    """
    distributions = space.distributions()
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(
        seed=seed + len(trials), n_startup_trials=max(2, min(10, len(trials)))))
    for t in trials:
        state = optuna.trial.TrialState.COMPLETE if t["status"] == "complete" else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(
            params=t["config"], distributions=distributions, state=state,
            value=t["val_metric"] if state == optuna.trial.TrialState.COMPLETE else None))
    for _ in range(20):
        trial = study.ask(distributions)
        config = {k: trial.params[k] for k in distributions}
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if config_key(config) not in tried:
            return config
    return config
