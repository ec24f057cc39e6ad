"""Fixtures for the tuning-target tests (helpers live in target_testkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from target_testkit import messy_frame, write_cifar10


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models on a busy 2-core machine run several times faster on one intra-op thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
