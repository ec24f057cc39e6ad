"""Run outputs rebuilt from the study alone: `trials.csv` and `summary.json`.

Reading only the storage means a report can be made again later from any
Optuna storage, and what the files say is exactly what the study holds.
The test metric appears for the chosen (best-by-validation) trial only.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from lgt.studies import RunSpec, best_trial, counted_trials, redact_url

TRIAL_COLUMNS = ("number", "method", "source", "state", "val_metric", "best_epoch", "epochs_run", "seconds",
                 "fail_reason")


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.RUNNING or t.user_attrs.get("interrupted"):
            continue
        attrs = t.user_attrs
        row = {
            "number": t.number, "method": attrs.get("method"), "source": attrs.get("source"),
            "state": "complete" if t.state == TrialState.COMPLETE else attrs.get("status", t.state.name.lower()),
            "val_metric": t.value, "best_epoch": attrs.get("best_epoch"),
            "epochs_run": len(attrs.get("history", [])), "seconds": round(float(attrs.get("seconds") or 0), 3),
            "fail_reason": attrs.get("fail_reason") or "",
        }
        row |= dict(attrs.get("config", {}))
        rows.append(row)
    return rows


def write_trials_csv(study: optuna.Study, path: Path) -> Path:
    rows = trial_rows(study)
    knobs = list(study.user_attrs.get("default_config", {}))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*TRIAL_COLUMNS, *knobs], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def summarize(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    spec = RunSpec.from_study(study)
    counted = counted_trials(study)
    best = best_trial(study)
    seconds = sum(float(t.user_attrs.get("seconds") or 0) for t in counted)
    return {
        "run_id": spec.run_id,
        "target": spec.target,
        "method": spec.method,
        "seed": spec.seed,
        "budget": spec.trials,
        "trials_run": len(counted),
        "trials_failed": sum(1 for t in counted if t.state != TrialState.COMPLETE),
        "metric": study.user_attrs.get("metric"),
        "direction": study.direction.name.lower(),
        "best_trial": None if best is None else best.number,
        "best_val_metric": None if best is None else best.value,
        "test_metric_of_best": None if best is None else best.user_attrs.get("test_metric"),
        "best_extra_metrics": {} if best is None else best.user_attrs.get("extra_metrics", {}),
        "best_config": None if best is None else best.user_attrs.get("config"),
        "default_val_metric": next((t.value for t in counted if t.user_attrs.get("source") == "default"), None),
        "training_seconds": round(seconds, 2),
        "storage": redact_url(storage_url),
        "study_name": study.study_name,
    }


def write_run_outputs(study: optuna.Study, storage_url: str, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    write_trials_csv(study, folder / "trials.csv")
    summary = summarize(study, storage_url)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
