"""The CLI: bad input gives one clear line and exit 2, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from lgt.cli import main

REPO = Path(__file__).resolve().parents[2]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("lgt: error: ")
    return err[0]


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


@pytest.fixture
def csvs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "no_target": "a,b\n1,2\n3,4\n",
        "text_target": "".join(["x,y,label\n"] + [f"{i},{i % 3},{'cat' if i % 2 else 'dog'}\n" for i in range(30)]),
        "empty": "",
        "header_only": "a,b,c\n",
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.csv"
        paths[name].write_text(text)
    return paths


def _raw_config(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / f"config_raw_{len(content)}.json"
    path.write_bytes(content)
    return str(path)


def _bad_config(tmp_path: Path, config: dict[str, object]) -> str:
    path = tmp_path / f"config_{next(iter(config))}.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.parametrize("case, expected", [
    ("unknown_target", "unknown target 'nope'"),
    ("unknown_method", "unknown method 'bayes'"),
    ("missing_mnist", "MNIST not found"),
    ("no_target_column", "no column 'label'"),
    ("regression_on_text", "regression needs a numeric target"),
    ("empty_csv", "is empty"),
    ("header_only_csv", "is empty"),
    ("zero_trials", "--trials must be at least 1"),
    ("lr_out_of_range", "knob 'learning_rate'"),
    ("unknown_knob", "unknown knob 'colour'"),
    ("bad_choice", "knob 'optimizer'"),
    ("config_is_a_folder", "is a folder"),
    ("config_not_utf8", "is not UTF-8"),
    ("config_huge_number", "too large"),
    ("config_huge_json_int", "is not valid JSON"),
])
def test_bad_input_is_one_line_and_exit_2(case: str, expected: str, tmp_path: Path, storage: str,
                                          csvs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base = ["baseline", "--method", "tpe", "--trials", "2", "--storage", storage]
    argv = {
        "unknown_target": base + ["--target", "nope"],
        "unknown_method": ["baseline", "--target", "iris", "--method", "bayes", "--storage", storage],
        "missing_mnist": base + ["--target", "mnist", "--data-dir", str(tmp_path / "nothing")],
        "no_target_column": base + ["--target", f"csv:{csvs['no_target']}", "--target-column", "label"],
        "regression_on_text": base + ["--target", f"csv:{csvs['text_target']}", "--target-column", "label",
                                      "--task", "regression"],
        "empty_csv": base + ["--target", f"csv:{csvs['empty']}", "--target-column", "a"],
        "header_only_csv": base + ["--target", f"csv:{csvs['header_only']}", "--target-column", "a"],
        "zero_trials": ["baseline", "--target", "iris", "--method", "tpe", "--trials", "0", "--storage", storage],
        "lr_out_of_range": base + ["--target", "iris", "--config", _bad_config(tmp_path, {"learning_rate": 5})],
        "unknown_knob": base + ["--target", "iris", "--config", _bad_config(tmp_path, {"colour": "red"})],
        "bad_choice": base + ["--target", "iris", "--config", _bad_config(tmp_path, {"optimizer": "lbfgs"})],
        "config_is_a_folder": base + ["--target", "iris", "--config", str(tmp_path)],
        "config_not_utf8": base + ["--target", "iris", "--config", _raw_config(tmp_path, '{"optimizer": "é"}'.encode("latin-1"))],
        "config_huge_number": base + ["--target", "iris", "--config", _bad_config(tmp_path, {"epochs": 10 ** 400})],
        "config_huge_json_int": base + ["--target", "iris", "--config", _raw_config(tmp_path, b'{"epochs": 1' + b"0" * 5000 + b"}")],
    }[case]
    assert main(argv) == 2
    assert expected in _error_line(capsys)
    assert optuna.get_all_study_names(storage) == []


def test_missing_mnist_message_says_where_to_put_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "--target", "mnist", "--method", "tpe", "--data-dir", str(tmp_path / "d")]) == 2
    line = _error_line(capsys)
    assert str(tmp_path / "d" / "MNIST" / "raw") in line and "train-images-idx3-ubyte" in line


def test_storage_that_does_not_open(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    assert main(["baseline", "--target", "iris", "--method", "tpe", "--storage", url]) == 2
    assert "does not open" in _error_line(capsys)


def test_argparse_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["baseline", "--target", "iris", "--method", "tpe", "--trials", "many"])
    assert exc.value.code == 2
    _error_line(capsys)


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lgt", "baseline", "--target", "iris", "--method", "grid",
                           "--trials", "0"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "LGT_RESULTS_DIR": str(tmp_path), "LGT_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "lgt: error: --trials must be at least 1, got 0"


def test_targets_lists_every_target_with_its_space(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["targets"]) == 0
    text = capsys.readouterr().out
    for name in ("digits", "mnist", "cifar10", "iris", "wine", "breast_cancer", "diabetes", "csv:PATH"):
        assert name in text
    for knob in ("learning_rate", "conv_channels", "augmentation", "feature_fraction", "poly_degree"):
        assert knob in text
    assert "hyperparameters" in text and "architecture" in text and "features" in text


def test_baseline_cli_prints_best_and_writes_outputs(tmp_path: Path, storage: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", "--target", "wine", "--method", "random", "--trials", "2", "--storage", storage]) == 0
    out = capsys.readouterr().out
    assert "Best trial" in out and "test accuracy" in out
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert (run_dir / "trials.csv").exists() and (run_dir / "summary.json").exists()
