"""The words lgt stores and compares, each set written once, typed, with what each word means.

A trial's source, the proposer of an LGT run and how its agents word
things are stored as plain strings (in Optuna studies, in checkpoints),
compared in several layers, and shown to people. Each set is a `Literal`
type, so mypy checks every literal written against it (a misspelt source in
a comparison is an error, not a test that silently never matches), and a
registry of meanings beside it, as `lgt.methods` is the registry of
methods. A leaf module (standard library only): every layer imports it like
`lgt.errors` (pyproject.toml's import contract; tests/lgt/test_leaves.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

# How an LGT run chooses each round's config (`graphs.proposers`); each agents method of `lgt.methods` names one.
Proposer = Literal["hybrid", "llm", "tpe"]
PROPOSERS: dict[Proposer, str] = {
    "hybrid": "the Advisor chooses among TPE's candidates and a gate keeps TPE's pick when its choices do worse",
    "llm": "the Advisor proposes freely",
    "tpe": "TPE's pick every round, no LLM choice",
}

# Where an LGT trial's config came from (the trial attr `source`). A baseline's trials carry their method's name
# instead, and a proposal a person edited at `--approve` gets `EDITED` appended (`edited`).
Source = Literal["default", "advisor", "advisor+perturbed", "fallback", "tpe", "user"]
SOURCES: dict[Source, str] = {
    "default": "the untuned default config, every method's first trial",
    "advisor": "the Advisor's proposal, or its pick among TPE's candidates",
    "advisor+perturbed": "the Advisor's proposal repeated a config already run, so code moved it",
    "fallback": "the Advisor failed, so TPE's pick trained",
    "tpe": "TPE's pick (candidate 0, or the pick the gate kept)",
    "user": "the default config as a person edited it",
}
EDITED = "+user"

# How the agents word things: "free" lets the model write its sentences (checked, replaced when they fail);
# "menu" has it pick from closed lists only, and code writes every sentence from the picks (issue 18).
Words = Literal["menu", "free"]
# `--words` also takes "auto": menu for the embedded model (too small to write), free for an endpoint.
WordsOption = Literal["auto", "menu", "free"]
WORDS: dict[WordsOption, str] = {
    "auto": "menu for the embedded model, free for an endpoint",
    "menu": "the agents pick from closed lists (the Advisor's pick read from the model's probabilities) and lgt "
            "writes every sentence",
    "free": "the agents write, and the checks replace what fails",
}


def is_source(trial: Mapping[str, Any], source: Source) -> bool:
    """Whether a trial (its record, or its Optuna user attrs) came from `source`."""
    return trial.get("source") == source


def edited(source: str) -> str:
    """The source of a proposal a person edited: the default becomes "user", anything else gets `EDITED`."""
    return "user" if source == "default" else source + EDITED
