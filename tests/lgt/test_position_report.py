"""The bench reports where the Advisor's departures from TPE's pick were shown: the position bias, measured.

Two LGT runs built by hand as lgt stores them: one in free mode (the list in
its fixed order, so a departure's position is its pick) and one in menu
mode (the list shuffled, its position stored with the pick).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lgt.reporting import bench_rows, load_runs
from lgt.reporting.tables import bench_tables


def _run(storage: str, name: str, method: str, picks: list[dict[str, Any]]) -> str:
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for key, value in {"run_id": name, "target": "digits", "method": method, "seed": 1, "trials": len(picks) + 1,
                       "metric": "accuracy", "status": "complete"}.items():
        study.set_user_attr(key, value)
    for i, pick in enumerate([{}, *picks]):
        attrs = {"method": method, "source": "default" if i == 0 else "tpe", "config": {"learning_rate": i},
                 "history": [], "seconds": 1.0, "test_metric": 0.9, "round": i + 1} | pick
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.5 + i / 100, user_attrs=attrs))
    return name


def test_departures_are_counted_by_the_position_they_were_shown_at(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    free = _run(storage, "free", "lgt", [{"pick": 1, "departed": True}, {"pick": 1, "departed": True},
                                          {"pick": 0, "departed": False}, {"pick": 2, "gated": True}])
    menu = _run(storage, "menu", "lgt", [
        {"pick": 3, "departed": True, "evidence": {"choice": {"position": 0, "shown": [2, 0, 1, 3]}}},
        {"pick": 1, "departed": False, "gated": True, "evidence": {"choice": {"position": 1, "shown": [0, 1]}}},
        {"pick": 0, "departed": False, "evidence": {"choice": {"position": 1}}}])
    rows = {r["study_name"]: r for r in bench_rows(load_runs(storage, [free, menu]))}
    assert rows["free"]["departure_positions"] == {"1": 2, "2": 1}  # picks 1, 1 and the gated 2; pick 0 stays
    assert rows["menu"]["departure_positions"] == {"0": 1, "1": 1}
    assert rows["menu"]["departure_chance"] == {"0": 0.75, "1": 0.75, "2": 0.25, "3": 0.25}  # lists of 4 and of 2 shown
    assert rows["free"]["departure_chance"] == {}
    tables = bench_tables(list(rows.values()))
    section = tables.split("## Where the Advisor's departures were shown")[1]
    assert "| LGT | 5 | 0: 1 (20%), 1: 3 (60%), 2: 1 (20%) | 0: 15%, 1: 15%, 2: 5%, 3: 5% |" in section
