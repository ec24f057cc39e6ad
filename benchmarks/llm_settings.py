"""The embedded server's settings, measured on this machine: model format, threads, batch sizes, flash attention.

Each setting starts its own `agents.EmbeddedServer` (no prompt cache, so
every prompt is read in full) and sends the three requests of one recorded
LGT round (benchmarks/data/llm_round_digits_t10.json: Evaluator, Advisor,
Optimizer, each with its JSON schema, so replies are written under the
grammar as in a run). It prints prompt-reading and reply-writing speed from
the server's own timings, the round's seconds, each against the shipped
defaults of issue 11's "before" (Q4_1, half the cores), and whether every
reply parsed as JSON. `agents/embedded.py` takes its defaults from this.
Usage: `.venv/bin/python benchmarks/llm_settings.py [--repeat 2]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import EmbeddedServer

DATA = ROOT / "benchmarks" / "data" / "llm_round_digits_t10.json"


@dataclass(frozen=True)
class Setting:
    name: str
    fmt: str | None = "Q4_0"
    threads: int = 2
    gen_threads: int = 2
    batch: int = 512
    ubatch: int = 512
    flash_attn: bool = True


SETTINGS = (
    Setting("before: Q4_1 as shipped, 1 thread", fmt=None, threads=1, gen_threads=1, flash_attn=False),
    Setting("Q4_1, 2 threads", fmt=None),
    Setting("Q8_0, 2 threads", fmt="Q8_0"),
    Setting("F16, 2 threads", fmt="F16"),
    Setting("Q4_0, 2 threads, no flash attention", flash_attn=False),
    Setting("Q4_0, 2 threads, batch 256/256", batch=256, ubatch=256),
    Setting("Q4_0, 2 threads, batch 512/128", ubatch=128),
    Setting("Q4_0, 2 threads for prompts, 1 for replies", gen_threads=1),
    Setting("Q4_0, 2 threads (chosen)"),
)


def measure(setting: Setting, requests: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    prompt_n = prompt_ms = gen_n = gen_ms = seconds = 0.0
    valid = 0
    with EmbeddedServer(fmt=setting.fmt, threads=setting.threads, gen_threads=setting.gen_threads,
                        batch=setting.batch, ubatch=setting.ubatch, flash_attn=setting.flash_attn,
                        cache_bytes=None) as server:
        for _ in range(repeat):
            for request in requests:
                body = dict(request["body"]) | {"model": server.model, "temperature": 0.0}
                started = time.perf_counter()
                reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=600).json()
                seconds += float(request["weight"]) * (time.perf_counter() - started) / repeat
                t = reply.get("timings") or {}
                prompt_n, prompt_ms = prompt_n + t.get("prompt_n", 0), prompt_ms + t.get("prompt_ms", 0)
                gen_n, gen_ms = gen_n + t.get("predicted_n", 0), gen_ms + t.get("predicted_ms", 0)
                try:
                    json.loads(reply["choices"][0]["message"]["content"])
                    valid += 1
                except (KeyError, ValueError, TypeError):
                    pass
    return {"prompt_tps": 1000 * prompt_n / max(prompt_ms, 1e-9), "gen_tps": 1000 * gen_n / max(gen_ms, 1e-9),
            "round_s": seconds, "valid": valid / (repeat * len(requests))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    requests = json.loads(DATA.read_text())["requests"]
    print(f"{'setting':46} {'prompt tok/s':>12} {'reply tok/s':>11} {'round s':>8} {'vs before':>9} {'JSON ok':>7}",
          flush=True)
    base: float | None = None
    for setting in SETTINGS:
        m = measure(setting, requests, args.repeat)
        base = base or m["round_s"]
        print(f"{setting.name:46} {m['prompt_tps']:12.0f} {m['gen_tps']:11.1f} {m['round_s']:8.2f} "
              f"{base / m['round_s']:8.2f}x {m['valid']:7.0%}", flush=True)
    print(f"(no prompt cache: every prompt read in full; {statistics.fmean([1]):.0f} round = Evaluator + Advisor + "
          "a third of the Optimizer)")


if __name__ == "__main__":
    main()
