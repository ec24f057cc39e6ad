"""LGTSampler on user objectives: define-by-run spaces, ask/tell, threads, processes, a dying endpoint.

Only the LLM is scripted (tests/scripted_llm.py, behind a real port for
child processes); the objectives, Optuna and the LGT loop are real.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import optuna
from llm_server import serve
from optuna.trial import TrialState
from scripted_llm import ScriptedLLM

from lgt.reporting import write_run_files
from lgt.sampler import FILL_ATTR, ROUND_ATTR, LGTSampler

REPO = Path(__file__).resolve().parents[2]


def _sampler(llm: ScriptedLLM, **kw: Any) -> LGTSampler:
    return LGTSampler(seed=0, llm_base_url="http://llm.test/v1", client_factory=llm.factory(), **kw)


def conditional(trial: optuna.Trial) -> float:
    """A model family and its own knobs, reporting a curve: define-by-run with conditions."""
    family = trial.suggest_categorical("family", ["tree", "line"])
    if family == "tree":
        depth = trial.suggest_int("depth", 1, 8)
        score = 1 - abs(depth - 5) / 10
    else:
        c = trial.suggest_float("c", 1e-3, 10, log=True)
        score = 0.8 - abs(math.log10(c)) / 10
    for step in range(4):
        trial.report(score * (step + 1) / 4, step)
    return score


def test_a_define_by_run_objective_gets_rounds_with_proposals_verdicts_and_a_change_log(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(direction="maximize", storage=storage, study_name="mine",
                                sampler=_sampler(ScriptedLLM(), description="a toy model family choice"))
    study.optimize(conditional, n_trials=8)
    trials = study.trials
    assert len(trials) == 8 and all(t.state == TrialState.COMPLETE for t in trials)
    rounds = [t.user_attrs.get("round") for t in trials]
    assert rounds == list(range(1, 9))  # every trial was one of the loop's rounds
    assert trials[0].user_attrs["source"] == "default"
    assert all(t.user_attrs["verdict"] for t in trials)
    for t in trials:  # never an inactive knob: the objective asked only its family's
        assert ("depth" in t.params) == (t.params["family"] == "tree")
        assert ("c" in t.params) == (t.params["family"] == "line")
    summary = write_run_files(storage, "mine", tmp_path / "report")
    log = Path(summary["changelog"]).read_text()
    assert "## Round 8:" in log and "**Verdict:**" in log and "Target **a toy model family choice**" in log
    assert "val objective" in log and (tmp_path / "report" / "report.html").exists()


def test_ask_and_tell_drive_the_same_loop(tmp_path: Path) -> None:
    study = optuna.create_study(sampler=_sampler(ScriptedLLM()))  # minimize, in memory
    for _ in range(5):
        trial = study.ask()
        x = trial.suggest_float("x", -5, 5)
        trial.report(x * x, 0)
        study.tell(trial, x * x)
    assert [t.user_attrs.get("round") for t in study.trials] == [1, 2, 3, 4, 5]
    assert all("verdict" in t.user_attrs for t in study.trials)


def test_an_enqueued_config_is_the_first_round(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", sampler=_sampler(ScriptedLLM()))
    study.enqueue_trial({"family": "line", "c": 1.0})
    study.optimize(conditional, n_trials=3)
    first = study.trials[0]
    assert first.params == {"family": "line", "c": 1.0} and first.user_attrs["source"] == "default"


def test_two_threads_never_get_the_same_config(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    space = {"a": optuna.distributions.CategoricalDistribution([1, 2, 3, 4]),
             "b": optuna.distributions.CategoricalDistribution(["p", "q", "r", "s"])}
    study = optuna.create_study(direction="maximize", storage=storage,
                                sampler=_sampler(ScriptedLLM(), search_space=space))

    def objective(trial: optuna.Trial) -> float:  # 16 configs in all: repeats would be likely by chance
        a = trial.suggest_categorical("a", [1, 2, 3, 4])
        b = trial.suggest_categorical("b", ["p", "q", "r", "s"])
        return a + (b == "q")

    study.optimize(objective, n_trials=12, n_jobs=2)
    configs = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(study.trials) == 12 and len(set(configs)) == 12
    rounds = [t.user_attrs[ROUND_ATTR] for t in study.trials if ROUND_ATTR in t.user_attrs]
    assert len(rounds) == len(set(rounds))  # a round's config went to one trial
    fills = [t for t in study.trials if t.user_attrs.get(FILL_ATTR)]
    assert len(rounds) + len(fills) >= 11  # all but the first asked: the round's config, or TPE's meanwhile


SCRIPT = """
import optuna, sys
from lgt.sampler import LGTSampler
optuna.logging.set_verbosity(optuna.logging.WARNING)
def objective(trial):
    x = trial.suggest_float("x", -5, 5)
    trial.report(-(x - 1) ** 2, 0)
    return -(x - 1) ** 2
study = optuna.create_study(direction="maximize", storage=sys.argv[1], study_name="shared", load_if_exists=True,
                            sampler=LGTSampler(seed=0))
study.optimize(objective, n_trials=int(sys.argv[2]))
"""


def test_a_second_process_continues_the_same_loop_from_the_storage(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    llm = ScriptedLLM()
    with serve(llm) as url:
        env = {"OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-test-sampler", "PYTHONPATH": str(REPO),
               "LGT_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        for n in (3, 3):
            done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), storage, str(n)], env=env,
                                  capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.user_attrs.get("round") for t in study.trials] == [1, 2, 3, 4, 5, 6]
    assert study.trials[0].user_attrs.get("source") == "default"
    assert study.trials[3].user_attrs["source"] != "default"  # the second process went on; it did not start over
    evaluated = [agent for agent, _ in llm.requests if agent == "evaluator"]
    assert len(evaluated) == 6  # each trial judged once, whichever process told it


def test_an_endpoint_that_dies_mid_study_leaves_the_study_finishing_on_tpes_picks(tmp_path: Path) -> None:
    llm = ScriptedLLM()
    answer = llm.handle
    calls = {"n": 0}

    def dying(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] > 6:  # the preflight and the first rounds answer, then nothing does
            raise httpx.ConnectError("the endpoint went away", request=request)
        return answer(request)

    llm.handle = dying  # type: ignore[method-assign]
    study = optuna.create_study(direction="maximize", sampler=_sampler(llm))
    study.optimize(conditional, n_trials=8)
    assert len(study.trials) == 8 and all(t.state == TrialState.COMPLETE for t in study.trials)
    late = study.trials[5:]
    assert {t.user_attrs.get("source") for t in late} == {"fallback"}
    assert all("Advisor failed" in " ".join(t.user_attrs.get("notes") or []) for t in late)
    assert all("Evaluator failed" in str((t.user_attrs.get("verdict") or {}).get("correction")) for t in late)
