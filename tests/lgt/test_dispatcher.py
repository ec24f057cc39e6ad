"""The parallel driver's dispatcher stops waiting once the workers stop: at the run's budget, epochs included.

A worker runs in this process (`lgt.worker.work`, the loop `lgt worker`
runs) on an SQLite study, so which slot ran before the budget was spent is
fixed, not a race between processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from lgt.observer import RunObserver
from lgt.recorder import StudyDispatcher
from lgt.runs import RunSpec, build_target
from lgt.studies import counted_trials, create_study, open_storage
from lgt.worker import work


def candidate(config: dict[str, Any]) -> dict[str, Any]:
    return {"config": config, "source": "advisor", "changes": {}, "reasons": {}, "expected_effect": "", "notes": []}


def test_a_slot_still_queued_when_the_epoch_budget_is_spent_is_released_not_waited_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = RunSpec("disp", "synthetic:0", "lgt-llm", 0, trials=5, epoch_budget=3)
    target = build_target(spec)
    study = create_study(open_storage(url), spec, target, url=url)
    dispatcher = StudyDispatcher(study, spec, poll=0.01)
    three, two = target.default_config | {"epochs": 3}, target.default_config | {"x": 0.9}
    dispatcher.submit(1, [candidate(three), candidate(two)], {})
    dispatcher.submit(1, [candidate(three), candidate(two)], {})  # a restarted driver queues nothing twice

    ran = work(study, target, spec, RunObserver(), queue_only=True)  # slot 0 spends the 3 epochs; the worker stops
    results = dispatcher.collect(1, 2, RunObserver())

    assert ran == 1
    assert [(slot, number) for slot, number, _ in results] == [(0, 0)]
    assert results[0][2]["status"] == "complete" and len(results[0][2]["history"]) == 3
    released = study.trials[1]
    assert released.state == TrialState.FAIL and released.user_attrs["surplus"] and released.user_attrs["slot"] == 1
    assert len(study.trials) == 2 and [t.number for t in counted_trials(study)] == [0]


def test_a_round_whose_slots_all_ran_is_collected_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = RunSpec("whole", "synthetic:0", "lgt-llm", 0, trials=5, epoch_budget=30)
    target = build_target(spec)
    study = create_study(open_storage(url), spec, target, url=url)
    dispatcher = StudyDispatcher(study, spec, poll=0.01)
    dispatcher.submit(1, [candidate(target.default_config | {"x": x}) for x in (0.1, 0.9)], {})
    work(study, target, spec, RunObserver(), queue_only=True, stop=lambda: len(counted_trials(study)) == 2)
    assert [(slot, number) for slot, number, _ in dispatcher.collect(1, 2, RunObserver())] == [(0, 0), (1, 1)]


def test_a_driver_killed_halfway_through_queuing_a_round_queues_the_rest_when_it_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    spec = RunSpec("half", "synthetic:0", "lgt-llm", 0, trials=5)
    target = build_target(spec)
    study = create_study(open_storage(url), spec, target, url=url)
    batch = [candidate(target.default_config | {"x": x}) for x in (0.1, 0.9)]
    StudyDispatcher(study, spec).submit(2, batch[:1], {"llm_seconds": 1.0})  # killed before slot 1 was queued
    StudyDispatcher(study, spec).submit(2, batch, {"llm_seconds": 1.0})
    queued = sorted(study.trials, key=lambda t: t.user_attrs["slot"])
    assert [(t.user_attrs["slot"], t.state) for t in queued] == [(0, TrialState.WAITING), (1, TrialState.WAITING)]
    assert len(study.trials) == 2 and "llm_seconds" not in queued[1].user_attrs
