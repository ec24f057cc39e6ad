"""Trial records cross every boundary as plain JSON; a real result must survive the trip."""

from __future__ import annotations

import json

from target_testkit import FAST_TABULAR, quick_config

from tuning_targets.records import EpochRecord, TrialResult
from tuning_targets.registry import make_target


def test_a_real_result_round_trips_through_json() -> None:
    target = make_target("diabetes")
    result = target.run(quick_config(target, FAST_TABULAR, epochs=3))
    assert result.ok and len(result.history) == 3
    data = json.loads(json.dumps(result.to_dict()))
    assert data["status"] == "complete" and data["history"][0]["epoch"] == 1
    assert set(data["extra_metrics"]) == {"val_r2", "val_rmse", "test_r2", "test_rmse"}
    back = TrialResult.from_dict(data)
    assert back == result
    assert all(isinstance(r, EpochRecord) for r in back.history)


def test_a_failed_result_round_trips_and_is_not_ok() -> None:
    failed = TrialResult("failed", None, None, [EpochRecord(1, 2.3, 2.4, 0.1, 0.01, 0.5)],
                         fail_reason="diverged: training loss became nan in epoch 2", n_params=10)
    back = TrialResult.from_dict(json.loads(json.dumps(failed.to_dict())))
    assert back == failed and not back.ok and back.fail_reason == failed.fail_reason
    assert TrialResult.from_dict({"status": "complete", "val_metric": 0.5, "test_metric": 0.4}).history == []
