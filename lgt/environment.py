"""Every environment variable lgt reads: its name, what it sets, and the one way each kind of value is read.

Tests, CI and busy machines set these. They are read in every layer (the
embedded LLM's threads in `agents`, the memory bounds in `tuning_targets`,
the results folder in `lgt`), so they are defined here, in a leaf module
(the standard library and `lgt.errors` only) that every layer imports like
`lgt.errors` (pyproject.toml's import contract; tests/lgt/test_leaves.py).
`lgt.settings` builds the default paths from them.

A variable set to the empty string counts as unset. A whole number that is
not one is a one-line `UserError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lgt.errors import UserError


@dataclass(frozen=True)
class Variable:
    """An environment variable lgt reads, and what it sets."""

    name: str
    sets: str

    def text(self, env: Mapping[str, str] | None = None) -> str | None:
        """Its value in `env` (default: this process's environment); None when unset or empty."""
        return (os.environ if env is None else env).get(self.name) or None

    def flag(self) -> bool:
        """Whether it is set to anything but 0 or false."""
        return (self.text() or "0") not in ("0", "false")

    def whole_number(self, unit: str) -> int | None:
        """Its value as a whole number of `unit`, at least 1; None when unset."""
        text = self.text()
        if text is None:
            return None
        try:
            return max(1, int(text))
        except ValueError:
            raise UserError(f"{self.name} must be a whole number of {unit}, got {text!r}") from None


RESULTS_DIR = Variable("LGT_RESULTS_DIR", "where runs, benches and the default storage are written (default ./results)")
ARTIFACT_DIR = Variable("LGT_ARTIFACT_DIR", "where the plots of runs in a database server go (default: the results "
                                            "folder's artifacts/; a SQLite storage keeps them beside its file)")
DATA_DIR = Variable("LGT_DATA_DIR", "where MNIST and CIFAR-10 are looked for (default ./data)")
OFFLINE = Variable("LGT_OFFLINE", "1: never download a data set (the tests set it)")
HEARTBEAT_SECONDS = Variable("LGT_HEARTBEAT_SECONDS", "seconds between a worker's heartbeats on a database storage")
SKLEARN_THREADS = Variable("LGT_SKLEARN_THREADS", "threads a scikit-learn model may fit with (default 1)")
MAX_FEATURE_BYTES = Variable("LGT_MAX_FEATURE_BYTES", "the most bytes a config's encoded features may take")
MAX_MODEL_BYTES = Variable("LGT_MAX_MODEL_BYTES", "the most bytes a model family's estimate may take")
CACHE_DIR = Variable("LGT_CACHE_DIR", "where the embedded model's converted file is kept (default ~/.cache/lgt)")
LLM_THREADS = Variable("LGT_LLM_THREADS", "threads of the embedded LLM server (default: every core)")
LLM_TIMEOUT = Variable("LGT_LLM_TIMEOUT", "seconds an LLM request may take (default 60)")
OPENAI_API_KEY = Variable("OPENAI_API_KEY", "the key of the LLM endpoint (never written or shown)")
OPENAI_BASE_URL = Variable("OPENAI_BASE_URL", "an OpenAI-compatible endpoint (default: OpenAI's, with a key)")

VARIABLES: tuple[Variable, ...] = (RESULTS_DIR, ARTIFACT_DIR, DATA_DIR, OFFLINE, HEARTBEAT_SECONDS, SKLEARN_THREADS,
                                   MAX_FEATURE_BYTES, MAX_MODEL_BYTES, CACHE_DIR, LLM_THREADS, LLM_TIMEOUT,
                                   OPENAI_API_KEY, OPENAI_BASE_URL)
