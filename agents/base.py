"""The call path every agent shares: render, ask, validate, retry once, record.

The contract with the graph: an agent method either returns a validated
pydantic object or raises `AgentFailure` (the graph then lets Optuna TPE pick
that round). Only a misconfiguration the user must fix (a rejected key, an
unknown model) raises `UserError`, since every later round would fail too.

An LLM's reply is untrusted input, and it enters the program here and
nowhere else: its text is redacted (the API key and anything shaped like
one) before anything reads it, and every text field of the parsed reply is
cut to what its schema allows (`agents.replies`). So no sink downstream (console,
change log, storage, checkpoints, reports, the next prompt) can show a
secret an endpoint echoed, or be bloated by a reply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from agents import scoring
from agents.prompt import load_prompt
from agents.replies import CUT, cap_texts, parse_reply
from agents.schemas import letters_schema
from agents.scoring import MenuPick, Scored
from agents.transcript import CallRecord
from lgt.errors import UserError
from lgt.vocabulary import Words

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.runnables import Runnable

    from agents.llm import LLMClient
    from agents.transcript import Transcript

M = TypeVar("M", bound=BaseModel)
_CONFIG_ERRORS = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
# What of a raw reply is kept for the transcript and sent back in a retry; its full length is recorded.
RAW_KEPT_CHARS = 4000


class EndpointDown(UserError):
    """The LLM failed round after round: the run stops, saved, to be resumed once the endpoint is back."""


class AgentFailure(Exception):
    """An agent gave no usable answer this round (bad replies, or the server failed).

    The message is redacted and names the agent; ``attempts`` says how many
    calls were made. The graph falls back to a classic sampler for the round.
    """

    def __init__(self, agent: str, reason: str, attempts: int) -> None:
        super().__init__(f"{agent}: {reason}")
        self.agent = agent
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class _Reply:
    """What one attempt produced, whichever way it ended (``raw`` already redacted)."""

    raw: str | None
    parsed: BaseModel | None
    error: str | None
    usage: Mapping[str, Any]
    timings: Mapping[str, float] | None = None


class Agent:
    """Base of the agents; a subclass names its prompt file in ``name`` and its reply budget in ``max_tokens``."""

    name: ClassVar[str]
    attempts: ClassVar[int] = 2
    # Completion tokens a reply may use: the schema's longest valid reply plus room for JSON syntax.
    max_tokens: ClassVar[int] = 256

    def __init__(self, client: LLMClient, transcript: Transcript, words: Words = "free") -> None:
        self.client = client
        self.transcript = transcript
        self.words = words
        transcript.protect(client.secrets)
        self.prompt = load_prompt(self.name)

    @property
    def menu(self) -> bool:
        """Menu mode: the model picks from closed lists and code writes every sentence."""
        return self.words == "menu"

    def _score(self, messages: list[dict[str, str]], questions: Sequence[scoring.Question]) -> list[Scored]:
        """The model's log-probabilities of each question's options (`agents.scoring.score`), recorded.

        Raises:
            ScoringUnavailable: the endpoint cannot score; the caller generates its pick instead.
            AgentFailure: the server failed or did not answer.
        """
        start = time.monotonic()
        timeout = self.client.chat.request_timeout
        seconds = float(timeout) if isinstance(timeout, int | float) else 60.0
        try:
            scored = scoring.score(self.client, messages, questions, seconds)
        except scoring.ScoringUnavailable:
            raise
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            error = self.transcript.redact(f"{type(exc).__name__}: {exc}")[:300]
            self._record(messages, _Reply(None, None, error, {}), 1, time.monotonic() - start, fallback=True)
            raise AgentFailure(self.name, f"scoring failed ({error})", 1) from None
        raw = json.dumps([{"answer": answer, "options": list(options), "logprobs": [round(x, 4) for x in s.logprobs]}
                          for (answer, options), s in zip(questions, scored, strict=True)])
        readout = scoring.Readout(most_probable=[str(options[max(range(len(s.logprobs)), key=s.logprobs.__getitem__)])
                                                 for (_, options), s in zip(questions, scored, strict=True)])
        reply = _Reply(raw, readout, None, {"input_tokens": scored[0].prompt_tokens, "output_tokens": 0},
                       scored[0].timings)
        self._record(messages, reply, 1, time.monotonic() - start, fallback=False)
        return scored

    def _read_pick(self, messages: list[dict[str, str]], hidden: Callable[[], list[dict[str, str]]],
                   order: Sequence[int], prior: Sequence[float] | None, answer: str, take: int = 1,
                   also: Sequence[scoring.Question] = ()) -> tuple[MenuPick, list[list[float] | None]]:
        """The options a model prefers in a lettered menu (`lettered`), read from its probabilities.

        `messages` show the menu in `order` (position -> option); `answer`
        is the reply up to the letter. The letters' probabilities are divided
        by `prior` (the run's estimate of the model's position bias); with no
        prior yet, one more pass over `hidden()` (the same prompt, the
        options hidden) seeds it. `also` are more questions on the same
        prompt, answered in the same request: their ratings (per token, so an
        option's length does not count against it) come back second, None
        each when the endpoint cannot score. An endpoint that cannot score
        writes its picks instead, under a schema of the letters (position
        bias kept).
        """
        k = len(order)
        labels = list(scoring.LABELS[:k])
        try:
            scored = self._score(messages, [(answer, labels), *also])
        except scoring.ScoringUnavailable:
            reply = self._ask_messages(letters_schema(tuple(labels), take), messages)
            letters = list(dict.fromkeys(str(x) for x in getattr(reply, "picks", [])))
            chosen = [list(order)[labels.index(x)] for x in letters if x in labels][:take]
            return scoring.MenuPick(chosen=chosen, preference=[1.0 if i in chosen else 0.0 for i in range(k)],
                                    raw=[], shown=list(order), prior=[], mode="generated"), [None] * len(also)
        raw = scoring.distribution(scored[0].logprobs)
        seed = None
        if prior is None:
            seed = scoring.distribution(self._score(hidden(), [(answer, labels)])[0].logprobs)
            prior = seed
        by_position = scoring.debiased(raw, prior)
        preference = [0.0] * k
        for position, index in enumerate(order):
            preference[index] = by_position[position]
        chosen = sorted(range(k), key=lambda i: (-preference[i], i))[:take]
        ratings: list[list[float] | None] = [scoring.per_token(s.logprobs, s.tokens) for s in scored[1:]]
        return scoring.MenuPick(chosen=chosen, preference=preference, raw=raw, shown=list(order), prior=list(prior),
                                mode="scored", seed_prior=seed), ratings

    def _rate(self, messages: list[dict[str, str]], questions: Sequence[scoring.Question]) -> list[list[float] | None]:
        """The model's preference among each question's named options (per token); None each if it cannot score."""
        try:
            scored = self._score(messages, questions)
        except scoring.ScoringUnavailable:
            return [None] * len(questions)
        return [scoring.per_token(s.logprobs, s.tokens) for s in scored]

    def _ask(self, schema: type[M], values: Mapping[str, str], prompt: str | None = None) -> M:
        """One validated answer in ``schema``, or `AgentFailure` after two bad replies.

        ``prompt`` names another prompt file of this agent (its in-run role,
        say); by default the agent's own.
        """
        return self._ask_messages(schema, (load_prompt(prompt) if prompt else self.prompt).render(**values))

    def _ask_messages(self, schema: type[M], messages: list[dict[str, str]], max_tokens: int | None = None) -> M:
        """`_ask` with the messages already rendered."""
        runnable = self.client.structured(schema, max_tokens=max_tokens or self.max_tokens)
        turns = messages
        for attempt in range(1, self.attempts + 1):
            start = time.monotonic()
            reply = self._call(runnable, schema, turns, attempt, start)
            last = attempt == self.attempts
            self._record(turns, reply, attempt, time.monotonic() - start, fallback=reply.parsed is None and last)
            if reply.parsed is not None:
                return reply.parsed  # type: ignore[return-value]
            turns = [
                *messages,
                {"role": "assistant", "content": _kept(reply.raw or "")},
                {
                    "role": "user",
                    "content": f"Your reply could not be used: {reply.error}\nReply again with JSON only, in the required shape.",
                },
            ]
        raise AgentFailure(
            self.name,
            self.transcript.redact(f"no valid reply after {self.attempts} attempts: {reply.error}"),
            self.attempts,
        )

    def _call(
        self,
        runnable: Runnable[LanguageModelInput, BaseMessage],
        schema: type[M],
        turns: list[dict[str, str]],
        attempt: int,
        start: float,
    ) -> _Reply:
        """Invoke once; an unusable reply comes back as a `_Reply` with an error, a server failure raises."""
        self.client.timings.clear()
        try:
            message = runnable.invoke(_to_langchain(turns))
        except openai.LengthFinishReasonError as exc:
            content = exc.completion.choices[0].message.content if exc.completion.choices else None
            usage = exc.completion.usage
            tokens = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens} if usage else {}
            raw = self.transcript.redact(content) if content is not None else None
            return _Reply(raw, None, "the reply was cut off at the token limit; answer much shorter.", tokens,
                          self.client.timings.last())
        except openai.OpenAIError as exc:
            error = self.transcript.redact(f"{type(exc).__name__}: {exc}")
            self._record(turns, _Reply(None, None, error, {}), attempt, time.monotonic() - start, fallback=True)
            if isinstance(exc, _CONFIG_ERRORS):
                raise UserError(f"the LLM endpoint rejected the request ({error})") from None
            raise AgentFailure(self.name, error, attempt) from None
        content = message.content if isinstance(message.content, str) else json.dumps(message.content)
        raw = self.transcript.redact(content)  # the reply enters the program here, without any secret in it
        usage_metadata: Mapping[str, Any] = (message.usage_metadata if isinstance(message, AIMessage) else None) or {}
        timings = self.client.timings.last()
        try:
            return _Reply(raw, cap_texts(parse_reply(schema, raw)), None, usage_metadata, timings)
        except ValueError as exc:
            return _Reply(raw, None, str(exc), usage_metadata, timings)

    def _record(
        self, turns: list[dict[str, str]], reply: _Reply, attempt: int, latency: float, *, fallback: bool
    ) -> None:
        timings = reply.timings or {}
        self.transcript.append(
            CallRecord(
                agent=self.name,
                attempt=attempt,
                messages=turns,
                raw=None if reply.raw is None else _kept(reply.raw),
                raw_chars=None if reply.raw is None else len(reply.raw),
                parsed=reply.parsed.model_dump(mode="json") if reply.parsed is not None else None,
                error=reply.error,
                prompt_tokens=reply.usage.get("input_tokens"),
                completion_tokens=reply.usage.get("output_tokens"),
                latency_s=round(latency, 3),
                prompt_eval_s=_seconds(timings.get("prompt_ms")),
                generation_s=_seconds(timings.get("predicted_ms")),
                prompt_evaluated=_count(timings.get("prompt_n")),
                fallback=fallback,
                model=self.client.chat.model_name,
            )
        )


def _kept(raw: str) -> str:
    """A raw reply as it may be stored or sent back: the first `RAW_KEPT_CHARS`, with its length noted."""
    return raw if len(raw) <= RAW_KEPT_CHARS else f"{raw[:RAW_KEPT_CHARS]}{CUT} ({len(raw):,} characters in all)"


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(float(ms) / 1000, 3)


def _count(n: float | None) -> int | None:
    return None if n is None else int(n)


def _to_langchain(turns: list[dict[str, str]]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[t["role"]](content=t["content"]) for t in turns]


def lettered(lines: Sequence[str], order: Sequence[int]) -> str:
    """A menu as a model reads it: "A: ...", one line per option, in the display `order` (position -> option)."""
    return "\n".join(f"{scoring.LABELS[position]}: {lines[index]}" for position, index in enumerate(order))


def hidden(k: int) -> str:
    """The same menu with every option hidden: what the model's position bias alone makes of the letters."""
    return "\n".join(f"{scoring.LABELS[position]}: (details hidden)" for position in range(k))
