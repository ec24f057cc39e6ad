"""`lgt report --storage URL --study NAME`: a sampled study's change log and report, a plain study's tables and plots."""

from __future__ import annotations

from pathlib import Path

import optuna
from cli_process import one_line_exit_2, run_lgt
from scripted_llm import ScriptedLLM

from lgt.sampler import LGTSampler


def test_a_study_lgtsampler_sampled_gets_its_change_log_and_a_plain_one_gets_tables_and_plots(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    sampled = optuna.create_study(direction="maximize", storage=storage, study_name="sampled",
                                  sampler=LGTSampler(seed=0, llm_base_url="http://llm.test/v1",
                                                     client_factory=ScriptedLLM().factory()))
    sampled.optimize(lambda t: -(t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=4)
    plain = optuna.create_study(storage=storage, study_name="plain")
    plain.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2 + t.suggest_int("n", 0, 4), n_trials=6)

    done = run_lgt("report", "--storage", storage, "--study", "sampled", "--out", str(tmp_path / "a"),
                   results=tmp_path / "results")
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "a" / "changelog.md").read_text()
    assert "## Round 4:" in log and "**Verdict:**" in log
    assert (tmp_path / "a" / "report.html").exists()

    done = run_lgt("report", "--storage", storage, "--study", "plain", "--out", str(tmp_path / "b"),
                   results=tmp_path / "results")
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "b" / "report.md").read_text()
    assert "# Optuna study plain" in page and "The best 6 trials" in page and "| trial | value | x | n |" in page
    assert (tmp_path / "b" / "convergence.png").stat().st_size > 5000
    assert (tmp_path / "b" / "parameters.png").stat().st_size > 5000
    assert not (tmp_path / "b" / "changelog.md").exists()

    line = one_line_exit_2(run_lgt("report", "--storage", storage, "--study", "nope", results=tmp_path / "results"))
    assert "no study 'nope'" in line
