"""Issue 14.4: processes that open the same new SQLite storage at once all succeed.

Optuna creates the schema table by table, each `CREATE TABLE` after a check
that the table is missing; two processes on one new file both see it missing
and one failed with "table ... already exists". Real processes here, held at
a barrier so that they call `open_storage` in the same instant, round after
round, each round on a new file.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna

from lgt.studies import open_storage, sqlite_file

PROCESSES = 4
ROUNDS = 6

# Each child imports once, then per round: says it is ready, waits for "go", opens that round's storage.
CHILD = """
import sys, time
from pathlib import Path
from lgt.errors import UserError
from lgt.studies import open_storage
folder, me, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for r in range(rounds):
    (folder / f"ready-{r}-{me}").touch()
    while not (folder / f"go-{r}").exists():
        time.sleep(0.001)
    try:
        open_storage(f"sqlite:///{folder / f'c{r}.db'}")
        print(f"round {r}: ok", flush=True)
    except UserError as exc:
        print(f"round {r}: {exc}", flush=True)
"""


def test_processes_opening_one_new_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(i), str(ROUNDS)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(PROCESSES)]
    try:
        for r in range(ROUNDS):
            deadline = time.monotonic() + 120
            while len(list(tmp_path.glob(f"ready-{r}-*"))) < PROCESSES:
                assert all(c.poll() is None for c in children), [c.communicate() for c in children]
                assert time.monotonic() < deadline, "children never got ready"
                time.sleep(0.005)
            (tmp_path / f"go-{r}").touch()
        outputs = [c.communicate(timeout=120) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.splitlines() == [f"round {r}: ok" for r in range(ROUNDS)], out
    for r in range(ROUNDS):  # each new file holds Optuna's whole schema, and opens again
        assert optuna.get_all_study_names(f"sqlite:///{tmp_path / f'c{r}.db'}") == []
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(("ready-", "go-"))) == sorted(
        f"c{r}.db" for r in range(ROUNDS))  # the lock leaves no file behind


def test_sqlite_file_of_urls() -> None:
    assert sqlite_file("sqlite:///results/studies.db") == Path("results/studies.db")
    assert sqlite_file("sqlite:////tmp/x.db") == Path("/tmp/x.db")
    assert sqlite_file("sqlite://") is None
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None


def test_default_storage_folder_is_made_only_when_a_run_opens_it(tmp_path: Path) -> None:
    from lgt.settings import default_storage_url

    results = tmp_path / "results"  # LGT_RESULTS_DIR (conftest)
    url = default_storage_url()
    assert not results.exists()
    open_storage(url)
    assert (results / "studies.db").is_file()
