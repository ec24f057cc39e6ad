"""The one way this app talks to an LLM: `langchain_openai.ChatOpenAI`.

Settings come from ``--llm-model`` / ``--llm-base-url`` (passed in) and the
usual ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` environment variables. With
neither a base URL nor a key there is nothing to talk to, and the caller
starts the embedded model instead (see `needs_embedded_server`).

Structured output comes in two flavours, because servers disagree:

- ``json_schema``: OpenAI's structured outputs
  (``response_format={"type": "json_schema", ...}``).
- ``json_mode``: ``response_format={"type": "json_object", "schema": ...}``.
  llama-cpp-python's server turns that schema into a grammar, but rejects
  ``json_schema``; servers that ignore the extra key still return JSON, which
  pydantic then validates.

``auto`` picks ``json_schema`` for OpenAI itself (no base URL, or a base URL
on ``api.openai.com``) and ``json_mode`` for every other server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import httpx
import openai
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from agents.replies import parse_reply
from lgt import environment
from lgt.errors import UserError

if TYPE_CHECKING:
    from langchain_core.language_models import LanguageModelInput
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable

StructuredMode = Literal["json_schema", "json_mode", "auto"]
TIMEOUT_ENV = environment.LLM_TIMEOUT.name


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:
        raise UserError(f"{TIMEOUT_ENV} must be a number of seconds, got {text!r}")
    return seconds
DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to reach the LLM.

    The API key is a `SecretStr` and kept out of ``repr`` so that neither
    logs nor tracebacks of a settings object can show it.
    """

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    timeout: float = 60.0  # seconds per request; LGT_LLM_TIMEOUT overrides it
    max_retries: int = 2  # so one agent call waits at most timeout x 3 on a dead server
    structured_mode: StructuredMode = "auto"
    temperature: float | None = None
    max_tokens: int = 1024
    # The server is lgt's embedded one: a model too small to write (menu mode by default), which can also
    # score a menu's options by their probabilities (``POST /v1/lgt/score``, `agents.scoring`).
    embedded: bool = False

    @classmethod
    def from_sources(
        cls,
        model: str | None = None,
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LLMSettings:
        """Settings from CLI arguments, falling back to the environment.

        Args:
            model: ``--llm-model``; `DEFAULT_MODEL` when absent.
            base_url: ``--llm-base-url``; else ``OPENAI_BASE_URL``.
            env: The environment to read (this process's when None).
            overrides: Any other `LLMSettings` field (timeout, max_retries, ...).
        """
        key = environment.OPENAI_API_KEY.text(env)
        timeout = environment.LLM_TIMEOUT.text(env)
        if timeout is not None:
            overrides.setdefault("timeout", _seconds(timeout))
        return cls(
            model=model or DEFAULT_MODEL,
            base_url=base_url or environment.OPENAI_BASE_URL.text(env),
            api_key=SecretStr(key) if key else None,
            **overrides,
        )

    @property
    def resolved_mode(self) -> Literal["json_schema", "json_mode"]:
        """The structured-output flavour actually used (``auto`` resolved)."""
        if self.structured_mode != "auto":
            return self.structured_mode
        host = urlparse(self.base_url).hostname if self.base_url else "api.openai.com"
        return "json_schema" if host == "api.openai.com" else "json_mode"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be written or shown."""
        return (self.api_key.get_secret_value(),) if self.api_key else ()


def needs_embedded_server(settings: LLMSettings) -> bool:
    """True when neither an endpoint nor a key is configured: serve the embedded model."""
    return settings.base_url is None and settings.api_key is None


class Timings:
    """The ``timings`` object of the last chat completion, from servers that report one.

    llama.cpp's server (and lgt's embedded one) add ``{"prompt_n",
    "prompt_ms", "predicted_n", "predicted_ms"}`` to each response: how long
    reading the prompt took against writing the reply. LangChain drops
    unknown response fields, so an httpx response hook reads them on the
    way in. Agents call one at a time, so "the last response" is theirs.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] | None = None

    def clear(self) -> None:
        self._last = None

    def last(self) -> dict[str, float] | None:
        return self._last

    def hook(self, response: httpx.Response) -> None:
        if response.status_code != 200 or not response.request.url.path.endswith("/chat/completions"):
            return
        response.read()
        try:
            found = json.loads(response.content).get("timings")
        except (ValueError, AttributeError):
            return
        if isinstance(found, dict):
            self._last = {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


@dataclass(frozen=True)
class LLMClient:
    """A chat model plus what the agents need to call it safely.

    ``http`` is the same httpx client the chat model sends through; menu
    mode uses it for the embedded server's scoring route (`agents.scoring`),
    so tests that fake the HTTP layer fake that route too.

    Frozen means no field is reassigned; two fields are live objects that
    change as calls are made: ``timings``, which the response hook of
    ``http`` overwrites with each reply's server timings (see `Timings`),
    and ``http`` itself (its connection pool). A client is shared by the
    agents of one run, which call one at a time.
    """

    chat: ChatOpenAI
    mode: Literal["json_schema", "json_mode"]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timings: Timings = field(default_factory=Timings, repr=False)  # mutable on purpose: the last reply's timings
    http: httpx.Client | None = field(default=None, repr=False)
    embedded: bool = False

    def structured(self, schema: type[BaseModel], max_tokens: int | None = None) -> Runnable[LanguageModelInput, BaseMessage]:
        """``chat`` bound to reply in ``schema`` (the request carries the JSON schema), in at most ``max_tokens``.

        This binds ``response_format`` directly instead of using
        ``with_structured_output``: the wire request is the same, but its
        parsers either accept truncated JSON (json mode) or validate inside
        the openai SDK and lose the reply text (json_schema mode). The agents
        parse the raw reply strictly themselves (`agents.base`).
        """
        json_schema = schema.model_json_schema()
        limits = {} if max_tokens is None else _token_limit(self.mode, max_tokens)
        if self.mode == "json_schema":
            spec = {"name": schema.__name__, "schema": _openai_strict(json_schema), "strict": True}
            return self.chat.bind(response_format={"type": "json_schema", "json_schema": spec}, **limits)
        return self.chat.bind(response_format={"type": "json_object", "schema": json_schema}, **limits)


def _token_limit(mode: Literal["json_schema", "json_mode"], max_tokens: int) -> dict[str, Any]:
    """The request field that caps a reply's tokens on this kind of server.

    langchain-openai sends `max_tokens` as `max_completion_tokens`, which
    llama-cpp-python ignores: without the plain field a looping tiny model
    would generate until its context is full.
    """
    return {"max_tokens": max_tokens} if mode == "json_schema" else {"extra_body": {"max_tokens": max_tokens}}


def _openai_strict(node: Any) -> Any:
    """``node`` in the subset OpenAI's strict mode accepts.

    Strict mode wants every object closed and rejects string-length keywords
    (those only keep small local models from rambling).
    """
    if isinstance(node, list):
        return [_openai_strict(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openai_strict(v) for k, v in node.items() if k not in ("maxLength", "minLength")}
    if "properties" in out:
        out["additionalProperties"] = False
    return out


def make_client(settings: LLMSettings, http_client: httpx.Client | None = None) -> LLMClient:
    """Build the client for ``settings``.

    Args:
        settings: Endpoint, model and limits.
        http_client: An ``httpx.Client`` to send requests through; tests pass
            one with a ``MockTransport`` so the real OpenAI parsing runs offline.
    """
    mode = settings.resolved_mode
    timings = Timings()
    if http_client is None:
        http_client = httpx.Client(event_hooks={"response": [timings.hook]})
    else:
        http_client.event_hooks["response"] = [*http_client.event_hooks.get("response", []), timings.hook]
    chat = ChatOpenAI(
        model=settings.model,
        base_url=settings.base_url,
        # The openai client refuses to start without a key; local servers ignore it.
        api_key=settings.api_key or SecretStr("sk-no-key-required"),
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        http_client=http_client,
        **_token_limit(mode, settings.max_tokens),
    )
    return LLMClient(chat=chat, mode=mode, secrets=settings.secrets, timings=timings, http=http_client,
                     embedded=settings.embedded)


class _Ping(BaseModel):
    """The smallest reply in the shape lgt asks for: can the endpoint produce structured output at all?"""

    ok: bool


PREFLIGHT_TIMEOUT = 60.0  # seconds for the one preflight request (the embedded model may be loading)


def preflight(client: LLMClient) -> None:
    """Ask the endpoint one tiny structured question before a run writes anything.

    An endpoint that does not answer, answers 401/403/404 or 5xx, or cannot
    reply in JSON becomes one `UserError` line naming the fix, so a mistyped
    URL or model costs the user a second, not a run of silent TPE fallbacks.
    """
    from langchain_core.messages import HumanMessage

    from agents.transcript import redact

    where = client.chat.openai_api_base or "https://api.openai.com/v1"
    timeout = client.chat.request_timeout
    seconds = min(PREFLIGHT_TIMEOUT, float(timeout)) if isinstance(timeout, int | float) else PREFLIGHT_TIMEOUT
    runnable = client.structured(_Ping, max_tokens=16).bind(timeout=seconds)
    try:
        message = runnable.invoke([HumanMessage(content='Reply with the JSON object {"ok": true} and nothing else.')])
    except openai.APIConnectionError as exc:
        what = "did not answer in time" if isinstance(exc, openai.APITimeoutError) else "cannot be reached"
        raise UserError(f"the LLM endpoint {where} {what}; check --llm-base-url (or OPENAI_BASE_URL) and that the "
                        f"server runs") from None
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise UserError(f"the LLM endpoint {where} rejected the key (HTTP {exc.status_code}); check "
                        f"OPENAI_API_KEY") from None
    except openai.NotFoundError:
        raise UserError(f"the LLM endpoint {where} has no model {client.chat.model_name!r} (or no chat API at that "
                        f"path, HTTP 404); check --llm-model and --llm-base-url") from None
    except openai.APIStatusError as exc:
        raise UserError(f"the LLM endpoint {where} answers HTTP {exc.status_code} to a chat request; " +
                        redact(str(exc), client.secrets)[:160]) from None
    content = message.content if isinstance(message.content, str) else json.dumps(message.content)
    try:
        parse_reply(_Ping, redact(content, client.secrets))
    except ValueError as exc:
        raise UserError(f"the LLM endpoint {where} does not reply in the JSON shape lgt asks for ({exc}); lgt needs "
                        f"a server with structured output (JSON mode)") from None
