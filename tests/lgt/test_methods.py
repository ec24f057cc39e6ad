"""A method is one entry in `lgt.methods.METHODS`: every consumer reads the registry."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest

from lgt import methods
from lgt.cli import build_parser, main
from lgt.errors import UserError

HALTON = methods.Method(
    "halton", "QMC (Halton)", "quasi-random search", "#123456", "Optuna's quasi-Monte Carlo sampler",
    sampler=lambda target, seed, budget: optuna.samplers.QMCSampler(qmc_type="halton", seed=seed,
                                                                    warn_independent_sampling=False))


@pytest.fixture
def with_halton(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(methods, "METHODS", (*methods.METHODS, HALTON))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_new_method_is_one_entry_that_cli_bench_and_report_pick_up(with_halton: None, tmp_path: Path) -> None:
    parser = build_parser()
    baseline = parser._subparsers._group_actions[0].choices["baseline"]  # type: ignore[union-attr]
    assert "halton: Optuna's quasi-Monte Carlo sampler" in " ".join(baseline.format_help().split())

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["bench", "--targets", "iris", "--methods", "halton,tpe", "--trials", "2", "--seeds", "1",
                 "--storage", storage, "--bench-id", "b"]) == 0
    folder = tmp_path / "results" / "bench" / "b"
    rows = list(csv.DictReader((folder / "summary.csv").read_text().splitlines()))
    assert [(r["method"], r["trials_run"]) for r in rows] == [("tpe", "2"), ("halton", "2")]  # registry order
    table = (folder / "table.md").read_text()
    assert "| QMC (Halton) |" in table and "| TPE |" in table
    assert methods.colour("halton") == "#123456" and methods.prose("halton") == "quasi-random search"


def test_unknown_and_misused_methods_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="unknown method 'bayes'; choose one of: lgt, lgt-llm, lgt-tpe, tpe"):
        methods.get("bayes")
    assert methods.find("bayes") is None and methods.label("bayes") == "bayes"
    assert methods.colour("bayes") == methods.colour("bayes")  # a stable spare colour for a stranger
    assert methods.get("default").budget(15) == 1 and methods.get("tpe").budget(15) == 15
    assert methods.get("tpe-hyperband").prunes and not methods.get("tpe").prunes
    assert methods.names(agents=True) == ("lgt", "lgt-llm", "lgt-tpe") and "lgt" not in methods.names(agents=False)
    assert methods.by_proposer("hybrid").name == "lgt" and methods.by_proposer("llm").name == "lgt-llm"
