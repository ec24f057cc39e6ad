"""Plain-data builders and a scripted fake of an OpenAI-compatible server.

Only the LLM is faked: the real `ChatOpenAI` and openai client run against an
``httpx.MockTransport``, so request building, retries and response parsing
are the production code paths. (Module name is unique on purpose: test
helper modules share one import namespace under pytest's default mode.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from agents import LLMClient, LLMSettings, make_client

SECRET = "sk-test-SECRET123"
ACCURACY = {"name": "accuracy", "direction": "maximize"}
MAE = {"name": "mae", "direction": "minimize"}

Reply = str | int | Exception | dict[str, Any]


@dataclass
class FakeLLMServer:
    """Answers chat-completion requests from a script, and keeps every request body.

    A script item is the reply text (200), an HTTP status code (error body
    echoing the key, as real servers do on 401), an exception to raise, or a
    full completion dict.
    """

    script: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        if isinstance(item, int):
            error = {"error": {"message": f"server says no (key {SECRET})", "type": "server_error"}}
            return httpx.Response(item, json=error)
        if isinstance(item, dict):
            return httpx.Response(200, json=item)
        return httpx.Response(200, json=completion(item))

    def messages(self, index: int = -1) -> list[dict[str, str]]:
        return list(self.requests[index]["messages"])

    def prompt(self, index: int = -1) -> str:
        return "\n".join(m["content"] for m in self.messages(index))


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model",
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366},
    }


def fake_llm(*script: Reply, mode: str = "json_mode", max_retries: int = 0) -> tuple[FakeLLMServer, LLMClient]:
    """A scripted server and a real client wired to it."""
    server = FakeLLMServer(list(script))
    settings = LLMSettings(
        model="test-model",
        base_url="http://llm.test/v1",
        api_key=SecretStr(SECRET),
        structured_mode=mode,  # type: ignore[arg-type]
        max_retries=max_retries,
        timeout=5.0,
    )
    return server, make_client(settings, http_client=httpx.Client(transport=httpx.MockTransport(server.handle)))


def knob(name: str, dimension: str, kind: str, range_: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "dimension": dimension,
        "type": kind,
        "range": range_,
        "dynamic": False,
        "description": description,
    }


def space() -> list[dict[str, Any]]:
    """A 17-knob space shaped like the real MNIST/CIFAR ones."""
    return [
        knob("lr", "hyperparameters", "float", "[0.0001, 0.3] log-scale", "Peak learning rate of the optimizer."),
        knob("optimizer", "training", "categorical", 'one of "sgd", "adam", "adamw"', "Update rule."),
        knob("momentum", "hyperparameters", "float", "[0.0, 0.99]", "SGD momentum; ignored by Adam-family optimizers."),
        knob(
            "weight_decay",
            "hyperparameters",
            "float",
            "[1e-06, 0.01] log-scale",
            "L2 penalty applied by the optimizer.",
        ),
        knob("batch_size", "training", "categorical", "one of 32, 64, 128, 256", "Examples per gradient step."),
        knob("epochs", "training", "int", "[1, 30]", "Passes over the training split."),
        knob(
            "scheduler",
            "training",
            "categorical",
            'one of "none", "cosine", "step"',
            "Learning-rate schedule over epochs.",
        ),
        knob("warmup_epochs", "training", "int", "[0, 5]", "Epochs of linear warm-up before the schedule starts."),
        knob("label_smoothing", "training", "float", "[0.0, 0.2]", "Softens one-hot targets to curb over-confidence."),
        knob("grad_clip", "training", "float", "[0.0, 5.0]", "Max gradient norm; 0 disables clipping."),
        knob("depth", "architecture", "int", "[1, 6]", "Number of convolutional blocks."),
        knob(
            "width",
            "architecture",
            "categorical",
            "one of 16, 32, 64, 128",
            "Channels of the first block; doubles per block.",
        ),
        knob("dropout", "architecture", "float", "[0.0, 0.6]", "Dropout before the classifier head."),
        knob(
            "batch_norm",
            "architecture",
            "categorical",
            "one of true, false",
            "Batch normalisation after each convolution.",
        ),
        knob(
            "activation",
            "architecture",
            "categorical",
            'one of "relu", "gelu", "silu"',
            "Non-linearity used throughout.",
        ),
        knob(
            "augment",
            "features",
            "categorical",
            'one of "none", "light", "strong"',
            "Random crops, flips and small rotations of inputs.",
        ),
        knob(
            "normalize",
            "features",
            "categorical",
            "one of true, false",
            "Standardise inputs with training-split mean and std.",
        ),
    ]


DEFAULT_CONFIG: dict[str, Any] = {
    "lr": 0.01, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.0001, "batch_size": 64, "epochs": 10,
    "scheduler": "none", "warmup_epochs": 0, "label_smoothing": 0.0, "grad_clip": 0.0, "depth": 2, "width": 32,
    "dropout": 0.0, "batch_norm": True, "activation": "relu", "augment": "none", "normalize": True,
}  # fmt: skip


def history(
    val_metric: list[float], train_loss: list[float], val_loss: list[float], seconds: float = 0.6
) -> list[dict[str, Any]]:
    return [
        {"epoch": i + 1, "train_loss": t, "val_loss": v, "val_metric": m, "lr": 0.01, "seconds": seconds}
        for i, (m, t, v) in enumerate(zip(val_metric, train_loss, val_loss, strict=True))
    ]


def trial(
    number: int,
    val: float | None,
    changes: dict[str, Any] | None = None,
    *,
    source: str = "advisor",
    status: str = "complete",
    fail_reason: str | None = None,
    epochs: int = 10,
) -> dict[str, Any]:
    """A trial whose curve rises smoothly towards ``val``."""
    changes = changes or {}
    target = val if val is not None else 0.5
    ramp = [target - 0.3 * math.exp(-e / 2) for e in range(epochs)]
    train = [2.0 * math.exp(-e / 3) + 0.05 for e in range(epochs)]
    valid = [t + 0.05 for t in train]
    return {
        "number": number,
        "config": DEFAULT_CONFIG | changes,
        "status": status,
        "val_metric": val,
        "fail_reason": fail_reason,
        "history": history(ramp, train, valid) if status == "complete" else [],
        "source": source,
        "changes": changes,
        "reasons": {k: f"testing whether {k} helps" for k in changes},
    }
