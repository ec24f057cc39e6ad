"""Endpoints that misbehave on purpose, behind a real port (see `llm_server.serve`).

Each answers every agent in the right shape, so the run goes on, but plants
something in every text an LLM writes: the request's own Authorization
header (a badly built proxy that echoes the key), ten megabytes of text, or
a number hundreds of digits long where a knob's value goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from scripted_llm import ScriptedLLM, _body

TEXT_FIELDS = ("reason", "expected_effect", "analysis", "guidance", "reason_for_change")


def _plant(node: Any, text: str) -> Any:
    if isinstance(node, dict):
        return {k: (text if k in TEXT_FIELDS else _plant(v, text)) for k, v in node.items()}
    if isinstance(node, list):
        return [_plant(v, text) for v in node]
    return node


class HostileLLM(ScriptedLLM):
    """`ScriptedLLM`'s sensible replies, with `plant(request)` in every text field and `value` as every knob value."""

    def __init__(self, plant: Callable[[httpx.Request], str], value: Any = None) -> None:
        super().__init__()
        self.plant, self.value = plant, value
        self.planted: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        agent = self.agent_of(body)
        self.requests.append((agent, body))
        if agent == "preflight":
            return httpx.Response(200, json=_body(self.default(agent, body)))
        text = self.plant(request)
        self.planted.append(text[:200])
        reply = _plant(json.loads(self.default(agent, body)), text)
        if self.value is not None:
            for change in reply.get("changes", []):
                change["value"] = self.value
            if agent == "chooser":
                reply["adjust"] = [{"knob": "learning_rate", "value": self.value, "reason": text}]
        return httpx.Response(200, json=_body(json.dumps(reply)))


def echo_key() -> HostileLLM:
    """Echoes the key inside a sentence that passes the word checks, so the run shows it (redacted) as written."""
    return HostileLLM(lambda request: f"val loss flattened; auth header: {request.headers.get('authorization', '(none)')}")


def huge_text(chars: int = 10_000_000) -> HostileLLM:
    return HostileLLM(lambda request: "x" * chars)


def huge_number(digits: int = 400) -> HostileLLM:
    return HostileLLM(lambda request: "the curve is still climbing", value=10 ** digits)
