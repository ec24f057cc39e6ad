"""Scaling figure: completed trials per minute with 1, 2 and 4 `lgt worker` processes.

The target is `synthetic:SECONDS`: every trial sleeps a fixed time and uses
no CPU, so the figure measures coordination (claiming trials through the
storage, heartbeats, the sampler) and not how many cores the machine has.
Each worker count gets its own study with the same per-worker load; the
throughput is taken from the trials' own start and end times in the storage
(first start to last end), so process start-up (importing torch) is left
out and printed separately. Target: N workers reach at least 0.8 x N times
the throughput of one.

    scripts/with-postgres.sh .venv/bin/python benchmarks/scaling.py     # PostgreSQL (make bench-scaling)
    .venv/bin/python benchmarks/scaling.py --storage sqlite:///tmp/s.db # any storage URL
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

import optuna
from optuna.trial import TrialState

from lgt.baselines import BaselineRequest, run_baseline
from lgt.studies import counted_trials, open_storage, redact_url

WORKERS = (1, 2, 4)


def fresh_postgres_database(admin_url: str) -> str:
    import psycopg

    name = f"lgt_scaling_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def run(storage: str, workers: int, trials_per_worker: int, seconds: float) -> tuple[float, float]:
    """(trials per minute from the trials' timestamps, wall seconds including start-up)."""
    study_name = f"scaling-{workers}-{uuid.uuid4().hex[:6]}"
    budget = workers * trials_per_worker
    run_baseline(BaselineRequest(target=f"synthetic:{seconds}", method="random", trials=budget, seed=1,
                                 storage=storage, run_id=study_name, create_only=True))
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "lgt.cli", "worker", "--storage", storage, "--study", study_name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"a worker failed (exit {proc.returncode}) on study {study_name}")
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage))
    done = [t for t in counted_trials(study) if t.state == TrialState.COMPLETE]
    if len(done) != budget:
        raise SystemExit(f"study {study_name} ended with {len(done)} trials, not {budget}")
    first = min(t.datetime_start for t in done if t.datetime_start)
    last = max(t.datetime_complete for t in done if t.datetime_complete)
    return len(done) / ((last - first).total_seconds() / 60), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="storage URL (default: a fresh database on $LGT_TEST_POSTGRES_URL's "
                                          "server, else a temporary SQLite file)")
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each trial (default 2)")
    parser.add_argument("--trials-per-worker", type=int, default=6, help="budget per worker (default 6)")
    args = parser.parse_args()
    os.environ.setdefault("LGT_HEARTBEAT_SECONDS", "5")
    storage = args.storage
    if storage is None and os.environ.get("LGT_TEST_POSTGRES_URL"):
        storage = fresh_postgres_database(os.environ["LGT_TEST_POSTGRES_URL"])
    if storage is None:
        storage = f"sqlite:///{tempfile.mkdtemp()}/scaling.db"
    print(f"storage: {redact_url(storage)}; trials sleep {args.seconds:g} s; "
          f"{args.trials_per_worker} trials per worker")
    print(f"{'workers':>7}  {'trials/min':>10}  {'ratio to 1':>10}  {'target':>6}  {'wall s (with start-up)':>22}")
    base = None
    for workers in WORKERS:
        rate, wall = run(storage, workers, args.trials_per_worker, args.seconds)
        base = base or rate
        ratio = rate / base
        verdict = "ok" if ratio >= 0.8 * workers else "MISSED"
        print(f"{workers:>7}  {rate:>10.1f}  {ratio:>10.2f}  {0.8 * workers:>6.1f}  {wall:>22.1f}  {verdict}")


if __name__ == "__main__":
    main()
