"""Issue 15.5: a config that would run out of memory is one failed trial, never the end of the run.

Two layers: the tabular target estimates its encoded features' size before
fitting and refuses a config beyond the bound (`LGT_MAX_FEATURE_BYTES`, else
a quarter of the memory the process may use), and any `MemoryError` (numpy's
`_ArrayMemoryError` included) while the data is built or an epoch trains
fails the trial with "out of memory: ...". Either way the trial is recorded
as failed with its reason, like a diverged one, and the tuner goes on.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from torch import nn

from lgt.baselines import BaselineRequest, run_baseline
from lgt.studies import is_counted
from tuning_targets import make_target, tabular
from tuning_targets.tabular import MAX_FEATURE_BYTES_ENV, build_feature_pipeline, expanded_width

REPO = Path(__file__).resolve().parents[2]
REFUSED = "refused: poly_degree 2 would cross 20 encoded features into 230 columns"


def _impossible_allocation() -> None:
    """What numpy raises when memory runs out: 8 PB is more than any machine has, or can even address."""
    np.empty((10**8, 10**7))


def _numeric_csv(path: Path, rows: int, columns: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).round(3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(columns)])
    frame["y"] = (x[:, 0] + x[:, 1] > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


def _lgt(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
         memory_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    base |= {"LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1"} | (env or {})

    def limit() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    return subprocess.run([sys.executable, "-m", "lgt", *args], cwd=REPO, env=base, capture_output=True, text=True,
                          timeout=600, check=False, preexec_fn=limit)


def _trials(tmp_path: Path, run_id: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=run_id, storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}").trials


# --- the estimate --------------------------------------------------------------------------------------------


def test_expanded_width_bounds_what_the_pipeline_builds() -> None:
    frame = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 7, "c": np.arange(30) % 3,
                          "colour": ["red", "green", "blue", None, "red"] * 6, "y": np.arange(30) % 2})
    features = frame.drop(columns=["y"])
    for degree in (1, 2):
        config = {"scaler": "standard", "imputer": "median", "poly_degree": degree, "feature_fraction": 1.0}
        built = build_feature_pipeline(features, config, "classification").fit_transform(features, frame["y"])
        encoded, width = expanded_width(features, degree)
        assert encoded == 3 + 4  # three numeric; three colours and a gap
        assert width == (encoded if degree == 1 else encoded + encoded * (encoded + 1) // 2)
        assert built.shape[1] <= width
    numeric = features.drop(columns=["colour"])
    assert expanded_width(numeric, 2)[1] == build_feature_pipeline(
        numeric, {"scaler": "none", "imputer": "mean", "poly_degree": 2, "feature_fraction": 1.0},
        "classification").fit_transform(numeric, frame["y"]).shape[1]


def test_a_config_beyond_the_bound_fails_as_a_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = make_target(f"csv:{_numeric_csv(tmp_path / 'small.csv', 30, 20)}", target_column="y")
    monkeypatch.setenv(MAX_FEATURE_BYTES_ENV, "20000")  # degree 1: 4,800 bytes; degree 2: 55,200
    assert target.run(target.default_config).ok
    run = target.start_run(target.default_config | {"poly_degree": 2, "epochs": 3})
    assert run.done and run.step() is None  # in-run adaptation steps once before it looks: a failed epoch
    result = run.finish()
    assert result.status == "failed" and result.history == []
    assert result.fail_reason is not None and result.fail_reason.startswith(REFUSED)
    assert "more than the 19.5 KiB allowed (set by LGT_MAX_FEATURE_BYTES)" in result.fail_reason


def test_bound_defaults_to_a_share_of_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_FEATURE_BYTES_ENV, raising=False)
    assert tabular.max_feature_bytes() == int(tabular.memory_limit_bytes() * tabular.FEATURE_MEMORY_SHARE)
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < tabular.memory_limit_bytes() <= physical


# --- whole runs ----------------------------------------------------------------------------------------------


def test_run_goes_on_past_a_refused_config_and_stores_its_reason(tmp_path: Path) -> None:
    csv = _numeric_csv(tmp_path / "small.csv", 30, 20)
    config = tmp_path / "poly.json"
    config.write_text(json.dumps({"poly_degree": 2, "epochs": 3}))
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{csv}", "--target-column", "y", "--method", "random",
                "--trials", "3", "--seed", "1", "--config", str(config), "--run-id", "wide",
                env={MAX_FEATURE_BYTES_ENV: "20000"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = _trials(tmp_path, "wide")
    assert len(trials) == 3 and all(is_counted(t) for t in trials)
    first = trials[0]
    assert first.state == optuna.trial.TrialState.FAIL
    assert first.user_attrs["status"] == "failed" and first.user_attrs["fail_reason"].startswith(REFUSED)
    assert first.params["poly_degree"] == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials if t.params["poly_degree"] == 1)
    assert "refused: poly_degree 2" in (tmp_path / "results" / "wide" / "trials.csv").read_text()


def test_wide_csv_with_degree_2_under_a_memory_limit(tmp_path: Path) -> None:
    """The issue as reported: 5,000 columns, `poly_degree: 2`, a process memory limit, no bound set.

    Degree 2 crosses them into 12.5 million columns (2.8 GiB for 30 rows);
    under an 8 GiB address-space limit the bound is 2 GiB, so the config is
    refused before numpy tries, and the run finishes.
    """
    csv = _numeric_csv(tmp_path / "wide.csv", 30, 5000)
    config = tmp_path / "poly.json"
    config.write_text(json.dumps({"poly_degree": 2, "epochs": 3}))
    assert MAX_FEATURE_BYTES_ENV not in os.environ
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{csv}", "--target-column", "y", "--method", "random",
                "--trials", "2", "--config", str(config), "--run-id", "issue", memory_limit=8 * 1024**3)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = _trials(tmp_path, "issue")[0]
    assert first.state == optuna.trial.TrialState.FAIL
    assert first.user_attrs["fail_reason"].startswith(
        "refused: poly_degree 2 would cross 5,000 encoded features into 12,507,500 columns; 30 rows of them take "
        "2.8 GiB, more than the 2.0 GiB allowed (25% of the memory this process may use")


def test_data_too_big_even_for_the_default_config_is_one_line(tmp_path: Path) -> None:
    csv = _numeric_csv(tmp_path / "small.csv", 30, 20)
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{csv}", "--target-column", "y", "--method", "tpe",
                env={MAX_FEATURE_BYTES_ENV: "100"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [(
        "lgt: error: small: even the default config cannot train: 20 encoded features; 30 rows of them take "
        "4.7 KiB, more than the 100 bytes allowed (set by LGT_MAX_FEATURE_BYTES)")]
    assert not (tmp_path / "results").exists()


# --- out of memory while training ----------------------------------------------------------------------------


def test_memory_error_inside_fit_is_a_failed_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's real `_ArrayMemoryError`, raised while the feature pipeline fits, in a real baseline run."""
    real = tabular.build_feature_pipeline

    class Exhausted:
        def fit_transform(self, *args: Any) -> Any:
            _impossible_allocation()

    def pipeline(features: pd.DataFrame, config: dict[str, Any], task: str) -> Any:
        return Exhausted() if config["scaler"] == "minmax" else real(features, config, task)  # type: ignore[arg-type]

    monkeypatch.setattr(tabular, "build_feature_pipeline", pipeline)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    run_baseline(BaselineRequest(target="iris", method="random", trials=2, seed=3, storage=storage, run_id="oom",
                                 config={"scaler": "minmax", "epochs": 3}))
    trials = optuna.load_study(study_name="oom", storage=storage).trials
    assert len(trials) == 2
    first = trials[0]
    assert first.state == optuna.trial.TrialState.FAIL and is_counted(first)
    assert first.user_attrs["status"] == "failed"
    assert first.user_attrs["fail_reason"].startswith("out of memory: Unable to allocate")


def test_memory_error_inside_an_epoch_is_a_failed_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    class Greedy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _impossible_allocation()
            return self.layer(x)

    target = make_target("iris")
    monkeypatch.setattr(target, "build_model", lambda config, data: Greedy())
    result = target.run(target.default_config)
    assert result.status == "failed"
    assert result.fail_reason is not None and result.fail_reason.startswith("out of memory: Unable to allocate")
    assert result.fail_reason.endswith("(in epoch 1)")


def test_other_errors_while_training_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only allocation failures become failed trials; a bug keeps its traceback."""
    target = make_target("iris")

    def broken(config: dict[str, Any], data: Any) -> nn.Module:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(target, "build_model", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        target.run(target.default_config)
