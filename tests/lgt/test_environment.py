"""Environment variables are read in one module (`lgt.environment`), each kind of value one way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agents.embedded import _threads
from lgt import environment
from lgt.errors import UserError
from lgt.studies import DEFAULT_HEARTBEAT_SECONDS, heartbeat_seconds
from tuning_targets.families import sklearn_threads
from tuning_targets.image_data import default_data_dir, offline

ROOT = Path(__file__).resolve().parents[2]


def test_only_lgt_environment_reads_the_environment() -> None:
    readers = [str(path.relative_to(ROOT)) for package in ("agents", "graphs", "lgt", "tuning_targets")
               for path in sorted((ROOT / package).rglob("*.py"))
               if re.search(r"os\.environ\b|os\.getenv\(", path.read_text(encoding="utf-8"))]
    assert readers == ["lgt/environment.py"]


def test_a_whole_number_is_at_least_one_unset_when_empty_and_one_line_when_not_a_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LGT_SKLEARN_THREADS", "3")
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", "0")
    assert sklearn_threads() == 3 and heartbeat_seconds() == 1
    monkeypatch.setenv("LGT_HEARTBEAT_SECONDS", "")
    assert heartbeat_seconds() == DEFAULT_HEARTBEAT_SECONDS
    for name, read in (("LGT_LLM_THREADS", _threads), ("LGT_HEARTBEAT_SECONDS", heartbeat_seconds)):
        monkeypatch.setenv(name, "two")
        with pytest.raises(UserError, match=f"^{name} must be a whole number of (threads|seconds), got 'two'$"):
            read()


def test_paths_and_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LGT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LGT_OFFLINE", "false")
    assert default_data_dir() == tmp_path and not offline()
    monkeypatch.setenv("LGT_OFFLINE", "1")
    monkeypatch.delenv("LGT_DATA_DIR")
    assert offline() and default_data_dir() == Path("data")


def test_every_variable_is_listed_once_and_says_what_it_sets() -> None:
    names = [v.name for v in environment.VARIABLES]
    assert len(names) == len(set(names)) and all(v.sets for v in environment.VARIABLES)
    assert environment.OPENAI_API_KEY.text({"OPENAI_API_KEY": ""}) is None  # empty counts as unset
