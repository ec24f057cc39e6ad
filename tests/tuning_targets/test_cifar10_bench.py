"""benchmarks/cifar10_bench.py (issue 22.2): the mnist bench's methods and budgets on CIFAR-10, as one command.

Run as a user runs it, a real process on the small CIFAR-format files the
target tests write; the LGT runs' LLM is the scripted one behind a real port.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import optuna
import pytest
import torch
from llm_server import serve
from scripted_llm import ScriptedLLM

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "cifar10_bench.py"


def _run(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    base |= {"LGT_RESULTS_DIR": str(cwd / "results"), "LGT_OFFLINE": "1"} | dict(env or {})
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=base, capture_output=True, text=True,
                          timeout=900, check=False)


@pytest.mark.slow
def test_the_script_runs_the_mnist_benchs_methods_on_cifar10_files(cifar10_dir: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    llm = ScriptedLLM()
    with serve(llm) as base_url:
        proc = _run("--data-dir", str(cifar10_dir), "--seeds", "1", "--trials", "2", "--epoch-budget", "4",
                    "--storage", storage, "--llm-model", "scripted", "--llm-base-url", base_url, cwd=tmp_path,
                    env={"OPENAI_API_KEY": "sk-test-cifar"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("cifar10: 850 train / 150 val / 200 test; training on the "
                               + ("GPU" if torch.cuda.is_available() else "CPU")), lines[0]
    assert lines[1] == (f"running: lgt bench --targets cifar10 --data-dir {cifar10_dir} --methods "
                        f"lgt,tpe,random,tpe-hyperband,default --seeds 1 --trials 2 --epoch-budget 4 --storage "
                        f"{storage} --llm-model scripted --llm-base-url {base_url}"), lines[1]
    (bench_dir,) = (tmp_path / "results" / "bench").iterdir()
    rows = list(csv.DictReader((bench_dir / "summary.csv").open()))
    assert sorted(r["method"] for r in rows) == sorted(["lgt", "tpe", "random", "tpe-hyperband", "default"])
    for row in rows:
        assert row["target"] == "cifar10" and row["status"] != "failed", row
        assert 0.0 <= float(row["test_metric"]) <= 1.0 and int(row["epochs_trained"]) >= 1, row
        assert int(row["epochs_trained"]) <= 4, row  # every method cuts its last trial at the budget
        study = optuna.load_study(study_name=row["study_name"], storage=storage)
        assert study.user_attrs["data_dir"] == str(cifar10_dir) and study.user_attrs["epoch_budget"] == 4
    lgt = next(r for r in rows if r["method"] == "lgt")
    assert int(lgt["trials_run"]) == 2 and any(agent == "chooser" for agent, _ in llm.requests)  # round 2 chose
    table = (bench_dir / "table.md").read_text()
    assert "cifar10 (accuracy ↑)" in table and "| LGT |" in table and "LLM " in table.split("## Search cost")[1]


def test_missing_cifar10_files_are_one_line_before_anything_runs(tmp_path: Path) -> None:
    proc = _run("--data-dir", str(tmp_path / "nowhere"), "--storage", f"sqlite:///{tmp_path / 'studies.db'}",
                cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("cifar10_bench: error: CIFAR-10 not found: put its files in "), line
    assert proc.stdout == "" and not (tmp_path / "studies.db").exists() and not (tmp_path / "results").exists()
