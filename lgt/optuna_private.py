"""Every use of Optuna's private API, in one place.

Optuna keeps these names private, so any upgrade may move or change them.
Nothing else in lgt touches `study._storage`, `trial._trial_id`, the
heartbeat module or the queue's system attrs; `tests/lgt/test_optuna_private.py`
exercises each function here against the installed Optuna, so an upgrade
that breaks one fails that test by name instead of a run in the field.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial

# Optuna marks a trial that came out of the queue (enqueue_trial, or a heartbeat retry) with this system attr.
_QUEUED_ATTR = "fixed_params"


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a loaded study reads and writes (a cache around the RDB storage, for RDB URLs)."""
    return study._storage


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


def set_user_attr(study: optuna.Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Set a user attr on a trial that is still RUNNING when only its frozen copy is at hand."""
    storage_of(study).set_trial_user_attr(trial_id(trial), key, value)


def live_trial(study: optuna.Study, trial: FrozenTrial) -> optuna.Trial:
    """A `Trial` handle on a stored trial, finished or not (optuna-dashboard's notes want one)."""
    return optuna.Trial(study, trial_id(trial))
