"""Reading a choice from a model's probabilities instead of from what it writes.

A small model asked to write "the number of the best candidate" writes the
first one it sees: 24 of 26 departures in the committed change logs went to
the candidate shown second, and its probabilities over the labels put ~80%
on the first label whatever the list holds (measured on real Advisor
prompts, the order rotated). So in menu mode the Advisor's choice is read
from the log-probabilities of the candidate labels at the answer position
(one forward pass, `score`), the candidates are shown in an order shuffled
per round, and the model's position prior is divided out:

    prior(position) = mean over the run's earlier rounds of p(label at position)
                      (seeded by one content-free pass, candidates hidden)
    preference(candidate) ~ p(its label) / prior(its position)

Shuffling makes what sits at each position vary, so the running mean
estimates the position prior alone; dividing it out leaves what the content
moved. No extra pass per round.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

if TYPE_CHECKING:
    from agents.llm import LLMClient

LABELS = "ABCDEFGH"  # one token each in SmolLM2's vocabulary (as are the digits)
SCORE_PATH = "/lgt/score"


class ScoringUnavailable(Exception):
    """The server has no scoring route (any endpoint but lgt's embedded one): generate the pick instead."""


@dataclass(frozen=True)
class Scored:
    """What the scoring route answered: one log-probability per option, and the server's timings."""

    logprobs: list[float]
    tokens: list[int]  # each option's length in tokens
    prompt_tokens: int
    timings: Mapping[str, float]


class Readout(BaseModel):
    """What a scoring call read, as the transcript's parsed reply: each question's most probable option, raw."""

    most_probable: list[str]


Question = tuple[str, Sequence[str]]  # the start of the assistant's answer, and the options that may follow it


def score(client: LLMClient, messages: Sequence[Mapping[str, str]], questions: Sequence[Question],
          timeout: float) -> list[Scored]:
    """For each question, the log-probability of each option continuing the answer after `messages`.

    One request: the server reads the prompt once and each question's
    answer from there (`agents.llama_server.score_options`).

    Raises:
        ScoringUnavailable: the server has no such route (HTTP 404/405) or no HTTP client is known.
        httpx.HTTPError: the server failed or did not answer.
    """
    base = client.chat.openai_api_base
    if client.http is None or not base:
        raise ScoringUnavailable("no endpoint to score with")
    response = client.http.post(base.rstrip("/") + SCORE_PATH, timeout=timeout, json={
        "model": client.chat.model_name, "messages": list(messages),
        "questions": [{"answer": answer, "options": list(options)} for answer, options in questions]})
    if response.status_code in (404, 405):
        raise ScoringUnavailable(f"the endpoint has no {SCORE_PATH} route (HTTP {response.status_code})")
    response.raise_for_status()
    body = response.json()
    answers = body["answers"]
    if len(answers) != len(questions):
        raise httpx.DecodingError(f"the scoring route answered {len(answers)} questions of {len(questions)}")
    timings = {k: float(v) for k, v in (body.get("timings") or {}).items() if isinstance(v, int | float)}
    out = []
    for answer, (_, options) in zip(answers, questions, strict=True):
        logprobs = [float(x) for x in answer["logprobs"]]
        if len(logprobs) != len(options) or any(math.isnan(x) for x in logprobs):
            raise httpx.DecodingError(f"the scoring route answered {len(logprobs)} scores for {len(options)} options")
        tokens = [int(n) for n in answer.get("tokens") or [1] * len(options)]
        out.append(Scored(logprobs, tokens, int(body.get("prompt_tokens") or 0), timings))
    return out


def distribution(logprobs: Sequence[float]) -> list[float]:
    """The options' probabilities, renormalised over the options (their mass outside them is dropped)."""
    top = max(logprobs)
    weights = [math.exp(x - top) for x in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def per_token(logprobs: Sequence[float], tokens: Sequence[int]) -> list[float]:
    """Log-probabilities of options of several tokens, per token: "stopped too early" is not less likely for its length."""
    return [lp / max(1, n) for lp, n in zip(logprobs, tokens, strict=True)]


@dataclass(frozen=True)
class MenuPick:
    """What a model picked from a lettered menu, and how its probabilities read.

    ``chosen``: option indices, most preferred first (as many as asked);
    ``preference``: by option, after the position prior was divided out;
    ``raw``: the letters' probabilities by position; ``shown``: position ->
    option; ``seed_prior``: the content-free estimate made when no prior
    was known yet, for the run to keep (`fold`).
    """

    chosen: list[int]
    preference: list[float]
    raw: list[float]
    shown: list[int]
    prior: list[float]
    mode: str  # "scored", or "generated" by an endpoint that cannot score
    seed_prior: list[float] | None = None

    def record(self, kind: str) -> dict[str, Any]:
        """As stored with the trial (and folded into the run's position record under `kind`)."""
        return {"kind": kind, "mode": self.mode, "shown": list(self.shown), "raw": _rounded(self.raw),
                "prior": _rounded(self.prior), "preference": _rounded(self.preference),
                **({"seed_prior": _rounded(self.seed_prior)} if self.seed_prior else {})}


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 4) for v in values]


def key(kind: str, k: int) -> str:
    """The run's position record keeps one prior per kind of menu and length."""
    return f"{kind}:{k}"


def prior(state: Mapping[str, Any] | None, k: int, kind: str = "advisor") -> list[float] | None:
    """The position prior for a menu of `k` from the run's record (`fold`), or None before the first estimate."""
    entry = (state or {}).get(key(kind, k))
    if not entry or not entry.get("n"):
        return None
    sums = [float(x) for x in entry["sum"]]
    return [x / float(entry["n"]) for x in sums]


def fold(state: Mapping[str, Any] | None, k: int, observed: Sequence[float], kind: str = "advisor") -> dict[str, Any]:
    """The run's position record with one more observed letter distribution for a menu of `k`."""
    out = {name: dict(value) for name, value in (state or {}).items()}
    entry = out.get(key(kind, k)) or {"sum": [0.0] * k, "n": 0}
    out[key(kind, k)] = {"sum": [round(a + b, 6) for a, b in zip(entry["sum"], observed, strict=True)],
                         "n": int(entry["n"]) + 1}
    return out


def folded(state: Mapping[str, Any] | None, picks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's position record with every scored pick of a round folded in (its seed first, if it made one)."""
    record = dict(state or {})
    for pick in picks:
        if pick.get("mode") != "scored" or not pick.get("raw"):
            continue
        k, kind = len(pick["raw"]), str(pick.get("kind") or "advisor")
        if pick.get("seed_prior"):
            record = fold(record, k, pick["seed_prior"], kind)
        record = fold(record, k, pick["raw"], kind)
    return record


def debiased(raw: Sequence[float], position_prior: Sequence[float]) -> list[float]:
    """`raw` (by position) divided by the position prior, renormalised."""
    ratios = [p / max(q, 1e-9) for p, q in zip(raw, position_prior, strict=True)]
    total = sum(ratios)
    return [r / total for r in ratios]


def shuffled(k: int, seed: int) -> list[int]:
    """The display order of `k` candidates for one round: position -> candidate index, a permutation from `seed`."""
    import random

    order = list(range(k))
    random.Random(seed).shuffle(order)
    return order


def top(options: Sequence[str], rated: Sequence[float] | None, default: str) -> str:
    """The option rated highest (the first on ties), or `default` when nothing was rated."""
    if not rated:
        return default
    return options[max(range(len(options)), key=lambda i: (rated[i], -i))]
