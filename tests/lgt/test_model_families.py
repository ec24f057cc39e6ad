"""Every sampler on the tabular targets' conditional space, with real trainings on small real data.

TPE (grouped), GP, the per-family grid and random search run as baselines;
no trial ever holds a knob its own model family does not have; the LGT
agents' TPE candidate 0 is still exactly the `tpe` baseline's next trial;
a resumed run and a worker rebuild the very model the study recorded; and
a model too big for the memory bound is one failed trial, not a crash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import FrozenTrial, TrialState
from recording import CrashAfter

from agents.records import TrialRecord
from lgt import methods
from lgt.baselines import BaselineRequest, run_baseline
from lgt.candidates import TPECandidates
from lgt.runs import RunSpec, build_target
from lgt.studies import is_counted, open_storage
from lgt.worker import WorkerRequest, run_worker
from tuning_targets import SearchSpace, config_key, make_target

REPO = Path(__file__).resolve().parents[2]
FAMILIES = {"mlp", "hist_gb", "random_forest", "linear"}


def _trials(storage: str, run_id: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=run_id, storage=open_storage(storage)).trials


def _baseline(tmp_path: Path, method: str, trials: int, seed: int = 1, target: str = "iris",
              **options: Any) -> tuple[str, list[FrozenTrial]]:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    run_id = f"{target}-{method}-{seed}"
    run_baseline(BaselineRequest(target=target, method=method, trials=trials, seed=seed, storage=storage,
                                 run_id=run_id, out_dir=tmp_path / run_id, **options))
    return storage, _trials(storage, run_id)


def assert_no_inactive_knob(space: SearchSpace, trials: list[FrozenTrial]) -> None:
    """What a trial asked for and what it stored hold exactly the knobs its own values make active."""
    for trial in trials:
        if trial.user_attrs.get("surplus"):
            continue
        config = trial.user_attrs["config"]
        assert trial.params == config == space.active_config(config), trial.number
        assert space.validate(dict(config), strict=True).config == config
        assert trial.distributions == space.distributions(config)


@pytest.mark.parametrize("method", ["tpe", "gp", "random"])
def test_model_based_and_random_samplers_run_on_the_family_space(tmp_path: Path, method: str) -> None:
    space = make_target("iris").space
    _, trials = _baseline(tmp_path, method, trials=9)
    assert len(trials) == 9 and all(is_counted(t) for t in trials)
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.user_attrs.get("fail_reason") for t in trials]
    assert trials[0].user_attrs["source"] == "default" and trials[0].params["model"] == "mlp"
    assert_no_inactive_knob(space, trials)
    assert len({t.params["model"] for t in trials}) >= 3
    assert len({config_key(t.params) for t in trials}) == 9


def _draws(sampler: optuna.samplers.BaseSampler, space: SearchSpace, n: int = 12) -> list[dict[str, Any]]:
    """What a sampler asks over `n` trials told a made-up score (no training: only the sampler is compared)."""
    study = optuna.create_study(sampler=sampler)
    drawn = []
    for i in range(n):
        trial = study.ask()
        drawn.append(space.suggest(trial))
        study.tell(trial, float((i * 7) % 5) + 0.1 * len(drawn[-1]))
    return drawn


def test_tpe_models_the_families_as_groups_and_stays_as_it_was_without_them() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    families, mlp_only = make_target("iris"), make_target("iris", models="mlp")
    # Without conditions: the TPE of before, draw for draw.
    before = optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True)
    assert _draws(methods.tpe_sampler(mlp_only, 0, 15), mlp_only.space) == _draws(before, mlp_only.space)
    # With them: TPE decomposed into the groups of knobs that occur together.
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        grouped = optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True, group=True)
    ours = _draws(methods.tpe_sampler(families, 0, 15), families.space)
    assert ours == _draws(grouped, families.space)
    assert ours != _draws(optuna.samplers.TPESampler(seed=0, n_startup_trials=5, multivariate=True), families.space)


def test_the_grid_tries_every_family_first_then_their_grids(tmp_path: Path) -> None:
    space = make_target("wine").space
    _, trials = _baseline(tmp_path, "grid", trials=9, target="wine")
    assert len(trials) == 9 and all(t.state == TrialState.COMPLETE for t in trials)
    assert_no_inactive_knob(space, trials)
    assert [t.params["model"] for t in trials[:5]] == ["mlp", "mlp", "hist_gb", "random_forest", "linear"]
    assert len({config_key(t.params) for t in trials}) == 9
    target = make_target("wine")
    points = {config_key(p) for p in target.space.grid_points(target.default_config, 9, seed=1)}
    assert {config_key(t.params) for t in trials[1:]} <= points


def test_hyperband_prunes_over_steps_of_every_family(tmp_path: Path) -> None:
    space = make_target("iris").space
    _, trials = _baseline(tmp_path, "tpe-hyperband", trials=10, seed=2, epoch_budget=400)
    counted = [t for t in trials if is_counted(t)]
    assert len(counted) == 10
    assert_no_inactive_knob(space, trials)
    for trial in counted:  # a forest or a linear model is one step, reported once and never stopped
        if trial.params["model"] in ("random_forest", "linear"):
            assert trial.state == TrialState.COMPLETE and len(trial.user_attrs["history"]) == 1


def _records(trials: list[FrozenTrial]) -> list[TrialRecord]:
    return [TrialRecord(number=t.number, config=dict(t.user_attrs["config"]), status=t.user_attrs["status"],
                        val_metric=t.value if t.state == TrialState.COMPLETE else None) for t in trials]


def test_candidate_0_is_the_tpe_baselines_next_trial_on_the_family_space(tmp_path: Path) -> None:
    budget, seed = 9, 3
    _, trials = _baseline(tmp_path, "tpe", trials=budget, seed=seed)
    target = make_target("iris")
    assert len({t.params["model"] for t in trials}) >= 2
    records = _records(trials)
    for k in range(1, budget):
        source = TPECandidates(target.space, target.direction, target.default_config,
                               sampler=lambda: methods.tpe_sampler(target, seed, budget))
        assert config_key(source.next(records[:k])[0]) == config_key(trials[k].params), k
    # One source kept across rounds (what a run does) asks the same.
    kept = TPECandidates(target.space, target.direction, target.default_config,
                         sampler=lambda: methods.tpe_sampler(target, seed, budget))
    for k in range(1, budget):
        assert config_key(kept.next(records[:k])[0]) == config_key(trials[k].params), k


def test_tpes_good_region_and_scores_on_the_family_space(tmp_path: Path) -> None:
    _, trials = _baseline(tmp_path, "random", trials=8, seed=5)
    target = make_target("iris")
    source = TPECandidates(target.space, target.direction, target.default_config,
                           sampler=lambda: methods.tpe_sampler(target, 5, 8))
    records = _records(trials)
    region = source.region(records, 4, seed=1)
    assert 1 <= len(region) <= 4 and len({config_key(c) for c in region}) == len(region)
    for config in region:
        assert config == target.space.active_config(config) == target.space.validate(config, strict=True).config
    scores = source.scores(records, region + [trials[0].params])
    assert len(scores) == len(region) + 1 and all(np.isfinite(scores))
    assert scores[:len(region)] == sorted(scores[:len(region)], reverse=True)  # the region comes best first
    # A stray knob of another family is not scored as part of the config.
    assert source.scores(records, [trials[0].params | {"C": 3.0}]) == scores[-1:]


def test_a_resumed_run_goes_on_in_the_same_space_and_rebuilds_the_same_models(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    request = BaselineRequest(target="breast_cancer", method="random", trials=6, seed=7, storage=storage,
                              run_id="crash", out_dir=tmp_path / "crash")
    with pytest.raises(KeyboardInterrupt):
        run_baseline(request, CrashAfter(2))
    assert sum(is_counted(t) for t in _trials(storage, "crash")) == 3
    run_baseline(BaselineRequest(target="", method="", trials=6, storage=storage, resume="crash",
                                 out_dir=tmp_path / "crash"))
    trials = [t for t in _trials(storage, "crash") if is_counted(t)]
    assert len(trials) == 6
    target = build_target(RunSpec.from_study(optuna.load_study(study_name="crash", storage=open_storage(storage))))
    assert_no_inactive_knob(target.space, trials)
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        again = target.run(trial.user_attrs["config"], seed=7)
        assert again.val_metric == pytest.approx(trial.value, abs=1e-9), trial.params
        assert again.n_params == trial.user_attrs["n_params"]


def test_a_worker_runs_the_family_grid_and_its_models_rebuild_the_same(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    run_baseline(BaselineRequest(target="wine", method="grid", trials=6, seed=4, storage=storage, run_id="shared",
                                 create_only=True))
    done = run_worker(WorkerRequest(storage=storage, study="shared"))
    assert done["trials_done"] == 6 and done["trials_run_here"] == 6
    trials = _trials(storage, "shared")
    target = make_target("wine")
    assert_no_inactive_knob(target.space, trials)
    assert {t.params["model"] for t in trials} == FAMILIES
    for trial in trials:
        assert trial.state == TrialState.COMPLETE
        again = target.run(trial.user_attrs["config"], seed=4)
        assert again.val_metric == pytest.approx(trial.value, abs=1e-9)
        assert [h.val_loss for h in again.history] == pytest.approx(
            [h["val_loss"] for h in trial.user_attrs["history"]], abs=1e-9)


def test_two_worker_processes_share_a_family_grid_without_repeating_a_point(postgres_url: str,
                                                                            tmp_path: Path) -> None:
    run_baseline(BaselineRequest(target="iris", method="grid", trials=8, seed=2, storage=postgres_url,
                                 run_id="grid-shared", create_only=True))
    env = {**os.environ, "LGT_OFFLINE": "1"}
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    procs = [subprocess.Popen([sys.executable, "-m", "lgt.cli", "worker", "--storage", postgres_url, "--study",
                               "grid-shared"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
             for log in logs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.wait(timeout=600) == 0, log.read_text()
    trials = [t for t in _trials(postgres_url, "grid-shared") if is_counted(t)]
    assert len(trials) == 8
    assert_no_inactive_knob(make_target("iris").space, trials)
    assert len({config_key(t.params) for t in trials}) == 8


# --- memory ---------------------------------------------------------------------------------------------

def _lgt(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    base |= {"LGT_RESULTS_DIR": str(tmp_path / "results"), "LGT_OFFLINE": "1"} | env
    return subprocess.run([sys.executable, "-m", "lgt", *args], cwd=REPO, env=base, capture_output=True, text=True,
                          timeout=600, check=False)


def test_a_huge_forest_on_a_wide_table_fails_as_a_trial_and_the_run_goes_on(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 300)).round(3)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(300)])
    frame["y"] = (x[:, 0] + x[:, 1] > 0).astype(int)
    frame.to_csv(tmp_path / "wide.csv", index=False)
    config = tmp_path / "forest.json"
    config.write_text(json.dumps({"model": "random_forest", "n_estimators": 500}))
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{tmp_path / 'wide.csv'}", "--target-column", "y",
                "--method", "random", "--trials", "3", "--seed", "1", "--config", str(config), "--run-id", "forest",
                env={"LGT_MAX_MODEL_BYTES": str(8 * 1024**2)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = optuna.load_study(study_name="forest",
                               storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}").trials
    assert len(trials) == 3 and all(is_counted(t) for t in trials)
    first = trials[0]
    assert first.state == TrialState.FAIL and first.params == first.user_attrs["config"]
    assert first.user_attrs["fail_reason"] == (
        "refused: random_forest of 500 trees (no depth limit) on 240 rows may take 18.3 MiB, more than the "
        "8.0 MiB allowed (set by LGT_MAX_MODEL_BYTES)")
    assert "refused: random_forest of 500 trees" in (tmp_path / "results" / "forest" / "trials.csv").read_text()


def test_a_config_with_another_familys_knob_is_one_line_and_nothing_is_created(tmp_path: Path) -> None:
    config = tmp_path / "mixed.json"
    config.write_text(json.dumps({"model": "linear", "hidden_units": 128}))
    proc = _lgt(tmp_path, "baseline", "--target", "iris", "--method", "tpe", "--trials", "2", "--config",
                str(config), env={})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "lgt: error: knob 'hidden_units' applies only when model is mlp; this config has model 'linear'")
    assert not (tmp_path / "results" / "studies.db").exists()
