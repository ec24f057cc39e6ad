"""Every use of Optuna's private API, in one place.

Optuna keeps these names private, so any upgrade may move or change them.
Nothing else in lgt touches `study._storage`, `trial._trial_id`, the
heartbeat module, the queue's system attrs or TPE's density model; `tests/lgt/test_optuna_private.py`
exercises each function here against the installed Optuna, so an upgrade
that breaks one fails that test by name instead of a run in the field.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import TPESampler
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator
from optuna.samplers._tpe.sampler import _split_trials, default_gamma
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

# Optuna marks a trial that came out of the queue (enqueue_trial, or a heartbeat retry) with this system attr.
_QUEUED_ATTR = "fixed_params"


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a loaded study reads and writes (a cache around the RDB storage, for RDB URLs)."""
    return study._storage


def storage_url(study: optuna.Study) -> str | None:
    """The URL of a study's RDB storage (under Optuna's cache), or None for other storages (in memory, journal)."""
    storage = storage_of(study)
    backend = getattr(storage, "_backend", storage)
    url = getattr(backend, "url", None)
    return str(url) if isinstance(url, str) else None


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (unique in the storage, unlike its number)."""
    return int(trial._trial_id)


def heartbeat_enabled(study: optuna.Study) -> bool:
    return bool(is_heartbeat_enabled(storage_of(study)))


def heartbeat_interval(study: optuna.Study) -> int:
    storage = storage_of(study)
    assert isinstance(storage, BaseHeartbeat)
    return int(storage.get_heartbeat_interval() or 10)


def record_heartbeat(study: optuna.Study, trial: optuna.Trial | FrozenTrial) -> None:
    storage = storage_of(study)
    assert isinstance(storage, BaseHeartbeat)
    storage.record_heartbeat(trial_id(trial))


def came_from_queue(trial: optuna.Trial) -> bool:
    """True when the trial came out of the queue (enqueued or a retry), not from the sampler."""
    return _QUEUED_ATTR in storage_of(trial.study).get_trial_system_attrs(trial_id(trial))


def was_queued(trial: FrozenTrial) -> bool:
    """`came_from_queue` for a stored trial, read from its frozen copy (no storage round trip)."""
    return _QUEUED_ATTR in trial.system_attrs


def set_user_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attr on a trial that is still RUNNING when only its frozen copy is at hand."""
    storage_of(study).set_trial_user_attr(trial_id(trial), key, value)


def live_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial:
    """A `Trial` handle on a stored trial, finished or not (optuna-dashboard's notes want one)."""
    return optuna.Trial(study, trial_id(trial))


# --- TPE's model, for the LGT agents' candidates ------------------------------------------------------------------
# TPE ranks a config by log l(x) - log g(x): how much likelier it is under the density of the best trials
# ("below") than under the rest ("above"). Optuna computes both inside TPESampler._sample and keeps them
# private; the Advisor's candidates need the same numbers, from the same model, to say how TPE rates them.

def _tpe_estimators(sampler: TPESampler, study: optuna.Study,
                    space: dict[str, BaseDistribution]) -> tuple[_ParzenEstimator, _ParzenEstimator]:
    trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=False)
    gamma = sampler._gamma or default_gamma
    below, above = _split_trials(study, trials, gamma(len(trials)))
    return (sampler._build_parzen_estimator(study, space, below, handle_below=True),
            sampler._build_parzen_estimator(study, space, above, handle_below=False))


def tpe_scores(sampler: TPESampler, study: optuna.Study, space: dict[str, BaseDistribution],
               configs: list[dict[str, Any]]) -> list[float]:
    """TPE's acquisition value (log l(x) - log g(x)) of each config, given the study's finished trials."""
    below, above = _tpe_estimators(sampler, study, space)
    samples = {name: np.asarray([dist.to_internal_repr(c[name]) for c in configs], dtype=float)
               for name, dist in space.items()}
    return [float(v) for v in sampler._compute_acquisition_func(samples, below, above)]


def tpe_region(sampler: TPESampler, study: optuna.Study, space: dict[str, BaseDistribution], n: int,
               seed: int) -> list[tuple[dict[str, Any], float]]:
    """`n` configs drawn from TPE's density of the best trials, best acquisition first (its "good region")."""
    below, above = _tpe_estimators(sampler, study, space)
    samples = below.sample(np.random.RandomState(seed), n)
    scores = sampler._compute_acquisition_func(samples, below, above)
    order = np.argsort(-scores, kind="stable")
    return [({name: dist.to_external_repr(samples[name][i]) for name, dist in space.items()}, float(scores[i]))
            for i in order]
