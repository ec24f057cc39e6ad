"""Every use of Optuna's private API (`lgt.optuna_private`), against the installed Optuna.

If an Optuna upgrade moves or changes one of these names, this file fails
by name instead of a run failing in the field.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lgt import optuna_private
from lgt.studies import open_storage

DISTRIBUTIONS = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    storage = open_storage(f"sqlite:///{tmp_path / 'studies.db'}")  # heartbeats on, as for every database URL
    return optuna.create_study(storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))


def test_storage_ids_and_heartbeats(study: optuna.Study) -> None:
    assert isinstance(optuna_private.storage_of(study), optuna.storages.BaseStorage)
    assert optuna_private.heartbeat_enabled(study)
    assert optuna_private.heartbeat_interval(study) >= 1
    trial = study.ask(DISTRIBUTIONS)
    assert optuna_private.trial_id(trial) == optuna_private.trial_id(study.trials[0])
    optuna_private.record_heartbeat(study, trial)  # a beat is stored without error
    without = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))  # in memory: no heartbeats
    assert not optuna_private.heartbeat_enabled(without)


def test_queued_trials_are_told_apart_from_sampled_ones(study: optuna.Study) -> None:
    study.enqueue_trial({"x": 0.25})
    queued, sampled = study.ask(DISTRIBUTIONS), study.ask(DISTRIBUTIONS)
    assert queued.params == {"x": 0.25}
    assert optuna_private.came_from_queue(queued) and not optuna_private.came_from_queue(sampled)


def test_user_attrs_of_a_frozen_running_trial_and_a_live_handle_on_a_finished_one(study: optuna.Study) -> None:
    study.ask(DISTRIBUTIONS)
    (running,) = study.get_trials(states=(TrialState.RUNNING,))
    optuna_private.set_user_attr(study, running, "interrupted", True)
    assert study.trials[0].user_attrs == {"interrupted": True}
    study.tell(0, 0.5)
    live = optuna_private.live_trial(study, study.trials[0])
    assert isinstance(live, optuna.Trial) and live.number == 0
