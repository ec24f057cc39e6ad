"""Fixtures for the tuning-target tests (helpers live in target_testkit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from target_testkit import messy_frame, write_cifar10


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding 1,000 training and 200 test images in the Python 2 pickle format."""
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root)
    return root


@pytest.fixture
def messy_csv(tmp_path: Path) -> Path:
    path = tmp_path / "customers.csv"
    messy_frame().to_csv(path, index=False)
    return path
