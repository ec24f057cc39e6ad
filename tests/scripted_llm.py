"""A scripted OpenAI-compatible server for whole-loop tests.

Only the LLM is fake: the real `ChatOpenAI` client talks to it through an
``httpx.MockTransport``. Requests are routed by the JSON schema they ask for
(Proposal, Choice, Verdict, Guidance); each agent has a queue of scripted
replies and a sensible default once the queue is empty. The default choice
among candidates is the last one offered, so a run departs from TPE's pick
whenever there is more than one.
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


def choice(pick: int, **adjust: Any) -> str:
    return json.dumps({"pick": pick, "adjust": [{"knob": k, "value": v, "reason": RATIONALE} for k, v in adjust.items()],
                       "reason": "the candidate's evidence points to a higher accuracy",
                       "expected_effect": "higher validation accuracy"})


def _rate_knob(body: dict[str, Any]) -> str:
    """learning_rate, or the first knob the schema allows when the space has none (the synthetic target)."""
    defs = body.get("response_format", {}).get("schema", {}).get("$defs", {})
    named = [d["properties"]["knob"] for d in defs.values() if "knob" in d.get("properties", {})]
    knobs = next((k.get("enum") or [k["const"]] for k in named if "enum" in k or "const" in k), ["learning_rate"])
    return "learning_rate" if "learning_rate" in knobs else knobs[0]


def _menu_change(body: dict[str, Any], knob: str, value: Any) -> dict[str, Any]:
    """A menu-mode change for `knob`: the first cause the schema lists, when it lists any."""
    defs = body.get("response_format", {}).get("schema", {}).get("$defs", {})
    causes = defs.get("MenuChange", {}).get("properties", {}).get("cause", {}).get("enum")
    return {"knob": knob, "value": value, **({"cause": causes[0]} if causes else {})}


@dataclass
class ScriptedLLM:
    advisor: list[Reply] = field(default_factory=list)
    evaluator: list[Reply] = field(default_factory=list)
    optimizer: list[Reply] = field(default_factory=list)
    advisor_batch: list[Reply] = field(default_factory=list)
    chooser: list[Reply] = field(default_factory=list)
    preflight: list[Reply] = field(default_factory=list)
    scores: list[Any] = field(default_factory=list)  # menu mode: scripted answers of the scoring route
    can_score: bool = True  # False: the route answers 404, as on any endpoint but lgt's embedded server
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _rates: Any = field(default_factory=lambda: itertools.cycle([0.05, 0.003, 0.1, 0.02, 0.2, 0.0007, 0.15]))

    def agent_of(self, body: dict[str, Any]) -> str:
        title = body.get("response_format", {}).get("schema", {}).get("title", "")
        if title in ("ProposalBatch", "MenuBatch"):
            return "advisor_batch"
        if title == "MenuLetters":  # a menu's letters, written by an endpoint that cannot score
            system = body["messages"][0]["content"]
            return next((a for a, who in (("chooser", "Advisor"), ("evaluator", "Evaluator"),
                                          ("optimizer", "Optimizer")) if f"You are the {who}" in system), "unknown")
        if title == "Choice":
            return "chooser"
        if title == "_Ping":
            return "preflight"
        return {"Proposal": "advisor", "Verdict": "evaluator", "Guidance": "optimizer"}.get(
            next((k for k in ("Proposal", "Verdict", "Guidance") if k in title), ""), "unknown")

    def default(self, agent: str, body: dict[str, Any] | None = None) -> str:
        knob = _rate_knob(body or {})
        title = (body or {}).get("response_format", {}).get("schema", {}).get("title", "")
        if title == "MenuLetters":
            return json.dumps({"picks": ["A"]})
        if title == "MenuEpochVerdict":
            return json.dumps({"healthy": True, "gradient": []})
        if title == "MenuEpochProposal":
            return json.dumps({"changes": []})
        if title in ("MenuProposal", "MenuBatch"):
            change = _menu_change(body or {}, knob, next(self._rates))
            if title == "MenuProposal":
                return json.dumps({"changes": [change]})
            size = (body or {})["response_format"]["schema"]["properties"]["proposals"]["maxItems"]
            return json.dumps({"proposals": [{"changes": [_menu_change(body or {}, knob, next(self._rates))]}
                                             for _ in range(size)]})
        if title == "EpochVerdict":  # in-run adaptation: by default the curve is fine and nothing changes
            return json.dumps({"healthy": True, "analysis": "The curve improves.", "gradient": []})
        if title == "EpochProposal":
            return json.dumps({"changes": [], "expected_effect": "the curve keeps improving"})
        if agent == "preflight":
            return json.dumps({"ok": True})
        if agent == "chooser":
            pick = (body or {})["response_format"]["schema"]["properties"]["pick"]
            picks = pick.get("enum") or [pick["const"]]  # one candidate: a constant
            return choice(picks[-1])
        if agent == "advisor_batch":
            size = (body or {})["response_format"]["schema"]["properties"]["proposals"]["maxItems"]
            return json.dumps({"proposals": [json.loads(proposal(**{knob: next(self._rates)}))
                                             for _ in range(size)]})
        if agent == "advisor":
            return proposal(**{knob: next(self._rates)})
        if agent == "evaluator":
            return json.dumps({"is_new_best": True, "analysis": "The curve rises steadily.", "gradient": [
                {"knob": knob, "direction": "increase", "reason": RATIONALE, "confidence": 0.6}]})
        return json.dumps({"guidance": "GUIDANCE-V: prefer moderate learning rates.",
                           "reason_for_change": "the larger rates helped twice"})

    def score(self, body: dict[str, Any]) -> list[float]:
        """Menu mode's scoring route, one question (``answer``, ``options``): by default all options alike.

        Alike, the Advisor's pick is TPE's candidate 0 (ties go to the first
        candidate) and the Evaluator's outcome the first listed; tests that
        need another pick script `scores` (a list of log-probabilities per
        question, or a function of the question with the request's
        ``messages``) or override this method.
        """
        return [0.0] * len(body["options"])

    def _scored(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        system = body["messages"][0]["content"] if body.get("messages") else ""
        agent = next((a for a in ("Advisor", "Evaluator", "Optimizer") if f"You are the {a}" in system), "unknown")
        self.requests.append((f"{agent.lower()}-score", body))
        answers = []
        for question in body["questions"]:
            item: Any = self.scores.pop(0) if self.scores else self.score
            if isinstance(item, int):
                return httpx.Response(item, json={"detail": "scripted failure"})
            asked = {"messages": body["messages"], **question}
            logprobs = item(asked) if callable(item) else item
            answers.append({"logprobs": logprobs, "tokens": [1] * len(logprobs)})
        return httpx.Response(200, json={"answers": answers, "prompt_tokens": 100, "timings": {
            "prompt_n": 50, "prompt_ms": 10.0, "predicted_n": 0, "predicted_ms": 0.0}})

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path.endswith("/lgt/score"):
            if not self.can_score:
                return httpx.Response(404, json={"detail": "Not Found"})
            return self._scored(request, body)
        agent = self.agent_of(body)
        self.requests.append((agent, body))
        queue: list[Reply] = getattr(self, agent)
        item = queue.pop(0) if queue else self.default(agent, body)
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
