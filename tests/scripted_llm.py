"""A scripted OpenAI-compatible server for whole-loop tests.

Only the LLM is fake: the real `ChatOpenAI` client talks to it through an
``httpx.MockTransport``. Requests are routed by the JSON schema they ask for
(Proposal, Verdict, Guidance); each agent has a queue of scripted replies and
a sensible default once the queue is empty.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from agents import LLMClient, LLMSettings, make_client

SECRET = "sk-test-GRAPH-SECRET-42"
RATIONALE = "the validation curve is still climbing at the last epoch"

Reply = str | int | Exception | dict[str, Any]


def _body(content: str) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 0, "model": "scripted",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


def proposal(**changes: Any) -> str:
    return json.dumps({"changes": [{"knob": k, "value": v, "reason": RATIONALE} for k, v in changes.items()],
                       "expected_effect": "higher validation accuracy"})


@dataclass
class ScriptedLLM:
    advisor: list[Reply] = field(default_factory=list)
    evaluator: list[Reply] = field(default_factory=list)
    optimizer: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _rates: Any = field(default_factory=lambda: itertools.cycle([0.05, 0.003, 0.1, 0.02, 0.2, 0.0007, 0.15]))

    def agent_of(self, body: dict[str, Any]) -> str:
        title = body.get("response_format", {}).get("schema", {}).get("title", "")
        return {"Proposal": "advisor", "Verdict": "evaluator", "Guidance": "optimizer"}.get(
            next((k for k in ("Proposal", "Verdict", "Guidance") if k in title), ""), "unknown")

    def default(self, agent: str) -> str:
        if agent == "advisor":
            return proposal(learning_rate=next(self._rates))
        if agent == "evaluator":
            return json.dumps({"is_new_best": True, "analysis": "The curve rises steadily.", "gradient": [
                {"knob": "learning_rate", "direction": "increase", "reason": RATIONALE, "confidence": 0.6}]})
        return json.dumps({"guidance": "GUIDANCE-V: prefer moderate learning rates.",
                           "reason_for_change": "the larger rates helped twice"})

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        agent = self.agent_of(body)
        self.requests.append((agent, body))
        queue: list[Reply] = getattr(self, agent)
        item = queue.pop(0) if queue else self.default(agent)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, int):
            return httpx.Response(item, json={"error": {"message": "scripted failure", "type": "server_error"}})
        return httpx.Response(200, json=_body(item if isinstance(item, str) else json.dumps(item)))

    def prompts(self, agent: str) -> list[str]:
        return ["\n".join(m["content"] for m in body["messages"]) for a, body in self.requests if a == agent]

    def factory(self) -> Callable[[LLMSettings], LLMClient]:
        def make(_: LLMSettings) -> LLMClient:
            settings = LLMSettings(model="scripted", base_url="http://llm.test/v1", api_key=SecretStr(SECRET),
                                   structured_mode="json_mode", max_retries=0, timeout=5.0)
            return make_client(settings, http_client=httpx.Client(transport=httpx.MockTransport(self.handle)))
        return make
