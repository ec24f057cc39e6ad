"""Shared fixtures: every test runs offline and writes under its own tmp dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LGT_OFFLINE", "1")
    monkeypatch.setenv("LGT_RESULTS_DIR", str(tmp_path / "results"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shared_data() -> Path:
    """The real 10k-digit MNIST subset beside the repo (see ../shared/data/README.md)."""
    root = Path(os.environ.get("LGT_SHARED_DATA", SHARED_DATA))
    if not (root / "MNIST" / "raw").exists():
        pytest.skip(f"MNIST subset not found under {root}")
    return root
