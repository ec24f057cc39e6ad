"""A run option is one definition (`lgt.options`): its flag, default, help and check reach every command from it."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from pathlib import Path

import pytest

from lgt import api
from lgt.bench import BenchRequest
from lgt.cli import build_parser, main
from lgt.errors import UserError
from lgt.options import AGENTS, OPTIONS, AgentsOptions
from lgt.runs import RunRequest
from lgt.sampler import LGTSampler
from lgt.tune import TuneRequest


def _command(name: str) -> argparse.ArgumentParser:
    commands = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    parser: argparse.ArgumentParser = commands.choices[name]  # type: ignore[index]
    return parser


def _flags(command: str) -> dict[str, argparse.Action]:
    return {action.dest: action for action in _command(command)._actions}


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lgt: error: "), err
    return err[0]


def test_tune_and_bench_take_the_agents_options_as_defined() -> None:
    assert [f.name for f in dataclasses.fields(AgentsOptions)] == list(AGENTS)
    tune, bench = _flags("tune"), _flags("bench")
    for name in AGENTS:
        defined = OPTIONS[name]
        for flags in (tune, bench):
            action = flags[name]
            assert action.option_strings == [defined.flag]
            assert (action.default, action.help, action.type, action.metavar) == (
                defined.default, defined.help, defined.type, defined.metavar)
            assert tuple(action.choices or ()) == defined.choices


@pytest.mark.parametrize("name", ["seed", "storage", "data_dir", "target_column", "epoch_budget", "csv_sep",
                                  "csv_encoding", "models", "metric", *AGENTS, "parallel", "on_llm_failure",
                                  "adapt_check"])
def test_a_requests_default_is_its_options(name: str) -> None:
    tune = TuneRequest(target="iris", trials=1)
    assert getattr(tune, name) == OPTIONS[name].default
    if name in {f.name for f in dataclasses.fields(BenchRequest)}:
        assert getattr(BenchRequest(["iris"], ["tpe"], 1, [1]), name) == OPTIONS[name].default


def test_the_python_apis_default_as_defined() -> None:
    signature = inspect.signature(LGTSampler)
    for name in ("llm_model", "llm_base_url", "optimize_every", "candidates", "words"):
        assert signature.parameters[name].default == OPTIONS[name].default
    signature = inspect.signature(api.tune)
    for name in ("seed", "proposer", "words", "llm_model", "llm_base_url", "storage"):
        assert signature.parameters[name].default == OPTIONS[name].default


@pytest.mark.parametrize(("name", "value", "line"), [
    ("candidates", "0", "--candidates must be from 1 to 8, got 0"),
    ("candidates", "9", "--candidates must be from 1 to 8, got 9"),
    ("optimize_every", "-1", "--optimize-every must be 0 (never) or more, got -1"),
    ("epoch_budget", "0", "--epoch-budget must be at least 1, got 0"),
])
def test_a_bad_value_is_the_same_line_through_tune_and_bench(name: str, value: str, line: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    flag = OPTIONS[name].flag
    assert main(["tune", "--target", "iris", flag, value, "--storage", storage]) == 2
    assert _error_line(capsys) == f"lgt: error: {line}"
    assert main(["bench", "--targets", "iris", "--methods", "lgt", flag, value, "--storage", storage]) == 2
    assert _error_line(capsys) == f"lgt: error: {line}"
    assert not (tmp_path / "studies.db").exists()


def test_the_sampler_says_the_same_by_its_keyword() -> None:
    with pytest.raises(UserError, match=r"^candidates must be from 1 to 8, got 0$"):
        LGTSampler(candidates=0)
    with pytest.raises(UserError, match=r"^optimize_every must be 0 \(never\) or more, got -1$"):
        LGTSampler(optimize_every=-1)
    with pytest.raises(UserError, match=r"^words must be one of auto, menu, free, got 'prose'$"):
        LGTSampler(words="prose")


def test_a_choice_given_in_python_is_checked_as_on_the_command_line() -> None:
    for request in (TuneRequest(target="iris", trials=1, words="prose"),
                    BenchRequest(["iris"], ["lgt"], 1, [1], words="prose")):
        with pytest.raises(UserError, match=r"^--words must be one of auto, menu, free, got 'prose'$"):
            request.check()
    with pytest.raises(UserError, match=r"^--adapt must be 'trial' or 'epoch', got 'round'$"):
        TuneRequest(target="iris", trials=1, adapt="round").check()


def test_a_new_option_is_one_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """An option added to the registry is a flag with its default and help, and its field is checked."""
    from lgt import options

    new = options.Option("patience", "rounds without progress before stopping (default 5)", default=5, type=int,
                         metavar="N", problem=lambda n: None if n >= 1 else f"must be at least 1, got {n}")
    monkeypatch.setitem(options.OPTIONS, "patience", new)
    parser = argparse.ArgumentParser()
    options.add_options(parser, "patience")
    assert parser.parse_args([]).patience == 5 and parser.parse_args(["--patience", "2"]).patience == 2
    assert "rounds without progress" in parser.format_help()

    @dataclasses.dataclass(kw_only=True)
    class Request(RunRequest):
        patience: int = new.field()

    assert Request(target="iris", trials=1).patience == 5
    with pytest.raises(UserError, match=r"^--patience must be at least 1, got 0$"):
        Request(target="iris", trials=1, patience=0).check()


def test_a_bench_option_joins_the_bench_id_only_when_given() -> None:
    from lgt.bench import bench_id_for

    base = BenchRequest(["iris"], ["lgt", "tpe"], 3, [1])
    assert bench_id_for(BenchRequest(["iris"], ["lgt", "tpe"], 3, [1], candidates=4)) == bench_id_for(base)
    assert bench_id_for(BenchRequest(["iris"], ["lgt", "tpe"], 3, [1], candidates=2)) != bench_id_for(base)
