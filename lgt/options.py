"""Every run option, defined once: its flag, its default, its help and its check.

The CLI's flags (`lgt.cli`), the requests' fields and their checks
(`lgt.runs.RunRequest`, `lgt.tune.TuneRequest`, `lgt.bench.BenchRequest`)
and `lgt.LGTSampler`'s arguments are derived from `OPTIONS`: a new option
is one `Option` here, then named by the commands that take it.

Only the standard library and the other leaves are imported: the parser
loads before the app.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lgt.errors import UserError
from lgt.vocabulary import PROPOSERS, WORDS

MAX_SEED = 2**32 - 1  # what numpy and Optuna's samplers accept
MAX_CANDIDATES = 8  # each is a line of the Advisor's prompt

_KEEP: Any = object()  # `Option.add_to`: the option's own default or help


@dataclass(frozen=True)
class Option:
    """One option of the run commands.

    `problem` says what is wrong with a given value (None: nothing), as the
    end of a sentence whose subject is the option: `--candidates` on the
    command line, `candidates` in Python (`check`), or `subject` when the
    sentence names the value rather than the option ("a seed ...").
    `choices` are checked without a `problem`.
    """

    name: str  # the field of the requests and the keyword of `LGTSampler`
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    problem: Callable[[Any], str | None] | None = None
    subject: str | None = None
    flag_name: str | None = None  # default: --name, with '-' for '_'
    action: str | None = None  # argparse's, for a switch

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    def problem_with(self, value: Any) -> str | None:
        if value is None:
            return None
        if self.choices and value not in self.choices:
            if len(self.choices) == 2:
                return f"must be {self.choices[0]!r} or {self.choices[1]!r}, got {value!r}"
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        return self.problem(value) if self.problem else None

    def check(self, value: Any, *, python: bool = False) -> None:
        """A UserError if `value` is wrong, naming the option as the caller knows it (`python`: by its keyword)."""
        problem = self.problem_with(value)
        if problem is not None:
            raise UserError(f"{self.subject or (self.name if python else self.flag)} {problem}")

    def add_to(self, parser: argparse.ArgumentParser, *, default: Any = _KEEP, help: str = _KEEP,
               required: bool = False) -> None:
        """The option's flag on `parser`; a command whose budget differs gives its own default and help."""
        kwargs: dict[str, Any] = {"dest": self.name, "help": self.help if help is _KEEP else help}
        if required:
            kwargs["required"] = True
        if self.action is not None:
            kwargs["action"] = self.action
        else:
            kwargs["default"] = self.default if default is _KEEP else default
        if self.type is not None:
            kwargs["type"] = self.type
        if self.choices:
            kwargs["choices"] = self.choices
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        parser.add_argument(self.flag, **kwargs)

    def field(self) -> Any:
        """A dataclass field of this option: its default, and the option itself for `check_fields`."""
        return dataclasses.field(default=self.default, metadata={"option": self})


def _at_least(low: int) -> Callable[[Any], str | None]:
    return lambda value: None if value >= low else f"must be at least {low}, got {value}"


# `lgt tune`'s trial budget when none is given (the CLI and `lgt.tune`); baselines and benches require one.
TUNE_TRIALS = 10

STORAGE_HELP = "Optuna storage URL (default sqlite:///results/studies.db)"

OPTIONS: dict[str, Option] = {option.name: option for option in (
    # What every run command takes (`lgt.runs.RunRequest`).
    Option("trials", "trial budget", type=int, problem=_at_least(1)),
    Option("seed", "seed for the sampler and the training (default 0)", default=0, type=int, subject="a seed",
           problem=lambda s: None if 0 <= s <= MAX_SEED else f"must be a whole number from 0 to {MAX_SEED}, got {s}"),
    Option("storage", STORAGE_HELP),
    Option("data_dir", "where mnist/cifar10 live (default $LGT_DATA_DIR or ./data)"),
    Option("target_column", "the column to predict, for csv: targets"),
    Option("task", "override the inferred task", choices=("classification", "regression")),
    Option("epoch_budget", "stop once E epochs were trained over all trials", type=int, metavar="E",
           problem=_at_least(1)),
    Option("csv_sep", "delimiter of csv: targets, e.g. ';' or tab (default: detected among , ; tab |)",
           metavar="CHAR"),
    Option("csv_encoding", "text encoding of csv: targets, e.g. latin-1 (default: UTF-8, else Windows-1252)",
           metavar="NAME"),
    Option("models", "model families of tabular and csv: targets, comma-separated from mlp, hist_gb, "
                     "random_forest, linear, or all (default: all; mlp alone is the MLP-only space)", metavar="LIST"),
    Option("metric", "what is tuned: accuracy or log_loss for classification, mae, rmse or r2 for regression "
                     "(default: accuracy or mae)"),
    # The agents' (`AgentsOptions`: lgt tune, lgt bench's agents methods, LGTSampler).
    Option("llm_model", "model name at the endpoint (default gpt-4o-mini with an OpenAI key)"),
    Option("llm_base_url", "any OpenAI-compatible endpoint (default $OPENAI_BASE_URL; with no endpoint and no "
                           "key, the embedded local model)"),
    Option("optimize_every", "the Optimizer rewrites the Advisor's guidance every K rounds (0: never; default 3)",
           default=3, type=int, metavar="K",
           problem=lambda k: None if k >= 0 else f"must be 0 (never) or more, got {k}"),
    Option("candidates", "TPE's candidates the Advisor chooses among each round (default 4)", default=4, type=int,
           metavar="K", problem=lambda k: None if 1 <= k <= MAX_CANDIDATES else
           f"must be from 1 to {MAX_CANDIDATES}, got {k}"),
    Option("words", "menu: the agents pick from closed lists (the Advisor's pick read from the model's "
                    "probabilities) and lgt writes every sentence; free: the agents write, and the checks replace "
                    "what fails; auto (default): menu for the embedded model, free for an endpoint",
           default="auto", choices=tuple(WORDS)),
    Option("adapt", "trial: the agents change the config between trials (default); epoch: also adjust dynamic "
                    "knobs (learning rate, regularisation, augmentation) between epochs of a trial",
           default="trial", choices=("trial", "epoch")),
    # lgt tune's alone.
    Option("proposer", "hybrid (default): the Advisor chooses among TPE's candidates and a gate keeps TPE's pick "
                       "when its choices do worse; llm: the Advisor proposes freely; tpe: TPE's pick, no LLM choice "
                       "(the configs of `lgt baseline --method tpe`)", default="hybrid", choices=tuple(PROPOSERS)),
    Option("on_llm_failure", "when the LLM fails 3 rounds in a row: stop, resumable with --resume (default), or "
                             "carry on with TPE's picks", default="stop", choices=("stop", "tpe")),
    Option("adapt_check", "apply in-run changes as proposed, without the A/B check from a snapshot", default=True,
           flag_name="--no-adapt-check", action="store_false"),
    Option("parallel", "the Advisor proposes K configs per round and `lgt worker`s train them (default 1: the "
                       "driver trains each proposal itself)", default=1, type=int, metavar="K",
           problem=_at_least(1)),
)}

# The agents' options, in the order `lgt tune --help` and `lgt bench --help` list them.
AGENTS = ("llm_model", "llm_base_url", "optimize_every", "candidates", "words", "adapt")


def option(name: str) -> Option:
    return OPTIONS[name]


def add_options(parser: argparse.ArgumentParser, *names: str) -> None:
    """The flags of these options, as defined, on `parser`."""
    for name in names:
        OPTIONS[name].add_to(parser)


def check_fields(obj: Any, *, python: bool = False) -> None:
    """Check every field of the dataclass `obj` that is an option (made by `Option.field`)."""
    for f in dataclasses.fields(obj):
        defined = f.metadata.get("option")
        if defined is not None:
            defined.check(getattr(obj, f.name), python=python)


@dataclass(kw_only=True)
class AgentsOptions:
    """How the LGT agents run: the options `lgt tune`, `lgt bench` and `LGTSampler` share."""

    llm_model: str | None = OPTIONS["llm_model"].field()
    llm_base_url: str | None = OPTIONS["llm_base_url"].field()
    optimize_every: int = OPTIONS["optimize_every"].field()
    candidates: int = OPTIONS["candidates"].field()  # TPE's candidates the Advisor chooses among (hybrid)
    words: str = OPTIONS["words"].field()  # menu: the agents pick from closed lists, code writes every sentence
    adapt: str = OPTIONS["adapt"].field()  # "epoch": the agents also adjust dynamic knobs between epochs
