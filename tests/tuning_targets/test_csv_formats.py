"""Issue 14.5: CSVs as spreadsheets write them: semicolons, decimal commas, tabs, Latin-1, a BOM.

The delimiter is detected, the encoding falls back from UTF-8 to
Windows-1252, and `--csv-sep` / `--csv-encoding` say it outright; when
reading still fails the one-line error names the option that fixes it.
Whole runs are real `lgt` processes on real files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from cli_process import one_line_exit_2, run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM

from lgt.errors import UserError
from tuning_targets import make_target
from tuning_targets.tabular import csv_frame, sniff_delimiter

REPO = Path(__file__).resolve().parents[2]
COLOURS = ("café", "crème", "noir")


def _rows(sep: str, decimal: str = ".") -> str:
    lines = [sep.join(["a", "b", "colour", "y"])]
    for i in range(40):
        a = f"{i / 7:.3f}".replace(".", decimal)
        lines.append(sep.join([a, str(i % 5), COLOURS[i % 3], str(int(i % 3 == 0))]))
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def semicolon_csv(tmp_path: Path) -> Path:
    """Excel in a European locale: ';' between fields, ',' in numbers, Windows-1252 text."""
    return _write(tmp_path / "prices.csv", _rows(";", decimal=","), "cp1252")


@pytest.fixture
def latin1_csv(tmp_path: Path) -> Path:
    return _write(tmp_path / "menu.csv", _rows(","), "latin-1")


def _lgt(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_lgt(*args, results=tmp_path / "results", env=env)




# --- reading -------------------------------------------------------------------------------------------------


def test_semicolons_and_decimal_commas_are_detected(semicolon_csv: Path) -> None:
    frame = csv_frame(semicolon_csv)()
    assert list(frame.columns) == ["a", "b", "colour", "y"]
    assert frame["a"].dtype.kind == "f" and frame["a"].iloc[8] == pytest.approx(8 / 7, abs=1e-3)
    assert set(frame["colour"]) == set(COLOURS)


def test_latin1_text_is_read_with_its_accents(latin1_csv: Path) -> None:
    frame = csv_frame(latin1_csv)()
    assert set(frame["colour"]) == set(COLOURS)


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_tabs_and_pipes_are_detected(tmp_path: Path, sep: str) -> None:
    frame = csv_frame(_write(tmp_path / "t.csv", _rows(sep)))()
    assert list(frame.columns) == ["a", "b", "colour", "y"] and frame["a"].dtype.kind == "f"


def test_byte_order_marks_do_not_reach_column_names(tmp_path: Path) -> None:
    assert next(iter(csv_frame(_write(tmp_path / "bom.csv", "\ufeff" + _rows(",")))().columns)) == "a"
    assert next(iter(csv_frame(_write(tmp_path / "u16.csv", _rows(";"), "utf-16"))().columns)) == "a"


def test_commas_in_quoted_text_do_not_fool_the_sniffer() -> None:
    assert sniff_delimiter('name;note;y\n"Smith, J";"a, b, c";1\n"Doe, A";"d, e";0\n') == ";"
    assert sniff_delimiter("a,b,y\n1,2,3\n") == ","
    assert sniff_delimiter("only\n1\n2\n") == ","


def test_given_separator_and_encoding_are_used(semicolon_csv: Path, tmp_path: Path) -> None:
    assert list(csv_frame(semicolon_csv, ";", "cp1252")().columns) == ["a", "b", "colour", "y"]
    tabbed = _write(tmp_path / "tabbed.csv", _rows("\t"))
    assert list(csv_frame(tabbed, "tab")().columns) == ["a", "b", "colour", "y"]


def test_wrong_separator_error_names_the_fix(semicolon_csv: Path) -> None:
    with pytest.raises(UserError, match=r"no column 'y'.*pass --csv-sep ';'"):
        make_target(f"csv:{semicolon_csv}", target_column="y", csv_sep=",")


def test_wrong_encoding_error_names_the_fix(latin1_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"is not utf-8 text; .*--csv-encoding latin-1"):
        csv_frame(latin1_csv, encoding="utf-8")()
    # Shift-JIS "、" is the bytes 81 41: 0x81 is neither UTF-8 nor Windows-1252.
    shift_jis = _write(tmp_path / "jp.csv", "名前,y\n" + "".join(f"東京、{i},{i % 2}\n" for i in range(20)), "shift_jis")
    with pytest.raises(UserError, match=r"neither UTF-8 nor Windows-1252 .*--csv-encoding"):
        csv_frame(shift_jis)()
    assert set(csv_frame(shift_jis, encoding="shift_jis")()["名前"]) == {f"東京、{i}" for i in range(20)}


# --- whole runs ----------------------------------------------------------------------------------------------


def test_baseline_on_a_semicolon_file(semicolon_csv: Path, tmp_path: Path) -> None:
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{semicolon_csv}", "--target-column", "y", "--method", "random",
                "--trials", "2", "--run-id", "semi")
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="semi", storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert study.user_attrs["csv_sep"] is None  # detected, so a resume detects it again


def test_baseline_with_given_options_keeps_them_for_resume(semicolon_csv: Path, tmp_path: Path) -> None:
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{semicolon_csv}", "--target-column", "y", "--method", "random",
                "--trials", "1", "--run-id", "given", "--csv-sep", ";", "--csv-encoding", "cp1252")
    assert proc.returncode == 0, proc.stderr[-2000:]
    storage = f"sqlite:///{tmp_path / 'results' / 'studies.db'}"
    attrs = optuna.load_study(study_name="given", storage=storage).user_attrs
    assert (attrs["csv_sep"], attrs["csv_encoding"]) == (";", "cp1252")
    study = optuna.load_study(study_name="given", storage=storage)
    study.set_user_attr("trials", 2)  # one more trial: the resume must read the file as the run first did
    proc = _lgt(tmp_path, "baseline", "--target", f"csv:{semicolon_csv}", "--method", "random", "--resume", "given")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(optuna.load_study(study_name="given", storage=storage).trials) == 2


def test_tune_on_a_latin1_file_with_accented_categories(latin1_csv: Path, tmp_path: Path) -> None:
    with serve(ScriptedLLM()) as base_url:
        proc = _lgt(tmp_path, "tune", "--target", f"csv:{latin1_csv}", "--target-column", "y", "--trials", "2",
                    "--run-id", "menu", "--llm-base-url", base_url, "--llm-model", "x", "--optimize-every", "0",
                    env={"OPENAI_API_KEY": "sk-test-csv"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="menu", storage=f"sqlite:///{tmp_path / 'results' / 'studies.db'}")
    assert len(study.trials) == 2 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize("args, expected", [
    (["--csv-encoding", "klingon"], "unknown --csv-encoding 'klingon'"),
    (["--csv-encoding", "base64"], "is not a text encoding"),
    (["--csv-sep", ";;"], "--csv-sep must be one character"),
])
@pytest.mark.parametrize("command", ["baseline", "tune", "bench"])
def test_bad_csv_options_are_one_line_and_leave_nothing(args: list[str], expected: str, command: str,
                                                        latin1_csv: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    target = f"csv:{latin1_csv}"
    argv = {"baseline": ["baseline", "--target", target, "--method", "tpe"],
            "tune": ["tune", "--target", target, "--llm-base-url", "http://127.0.0.1:9/v1"],
            "bench": ["bench", "--targets", target, "--methods", "random"]}[command]
    from lgt.cli import main

    assert main([*argv, "--target-column", "y", "--trials", "1", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "results").exists()


def test_csv_options_on_a_builtin_target_are_refused(tmp_path: Path) -> None:
    line = one_line_exit_2(_lgt(tmp_path, "baseline", "--target", "iris", "--method", "tpe", "--csv-sep", ";"))
    assert "--csv-sep applies to csv:PATH targets only" in line
    assert not (tmp_path / "results").exists()


def test_bad_encoding_is_one_line_in_a_real_process(latin1_csv: Path, tmp_path: Path) -> None:
    line = one_line_exit_2(_lgt(tmp_path, "baseline", "--target", f"csv:{latin1_csv}", "--target-column", "y",
                                 "--method", "tpe", "--csv-encoding", "no-such-codec"))
    assert "unknown --csv-encoding 'no-such-codec'" in line
    assert not (tmp_path / "results").exists()
    line = one_line_exit_2(_lgt(tmp_path, "baseline", "--target", f"csv:{latin1_csv}", "--target-column", "y",
                                 "--method", "tpe", "--csv-encoding", "utf-8"))
    assert "--csv-encoding latin-1" in line
    assert not (tmp_path / "results").exists()
