"""Shared fixtures: every test runs offline and writes under its own tmp dir."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LGT_OFFLINE", "1")
    monkeypatch.setenv("LGT_RESULTS_DIR", str(tmp_path / "results"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models on a busy 2-core machine run several times faster (and the same every time) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shared_data() -> Path:
    """The real 10k-digit MNIST subset beside the repo (see ../shared/data/README.md)."""
    root = Path(os.environ.get("LGT_SHARED_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw").exists():
        pytest.skip(f"MNIST subset not found under {root}")
    return root


POSTGRES_ENV = "LGT_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards.

    The server comes from `scripts/with-postgres.sh` (CI always runs the
    tests under it); the test is skipped only when no server URL is set.
    """
    admin = os.environ.get(POSTGRES_ENV)
    if not admin:
        pytest.skip(f"{POSTGRES_ENV} is not set (run the tests under scripts/with-postgres.sh)")
    import psycopg

    name = f"lgt_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
