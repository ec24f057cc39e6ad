"""LLM seconds per LGT round on the embedded model: the settings before issue 11 against today's, in one run.

A round is what the agents do between two trials of a digits run at trial
10: the Evaluator judges the newest trial, the Advisor proposes the next
config, and every third round the Optimizer rewrites the guidance (so its
call counts a third).

- **before**: the exact requests the agents sent at trial 10 of `lgt tune
  --target digits --trials 11 --seed 1` on the embedded model, recorded at
  commit 12d56a2 (benchmarks/data/llm_round_digits_t10.json: long prompts,
  free proposals, the old schemas), against the server as it was
  configured then: the shipped Q4_1 file, half the cores, no prompt cache,
  no flash attention.
- **after**: the same run's trial records, rendered by today's agents (the
  hybrid Advisor choosing among TPE's candidates, the Evaluator, the
  Optimizer: the production code paths of `graphs.proposers` and
  `graphs.rounds`), against `agents.EmbeddedServer` with its defaults.

Each side plays `--rounds` rounds in a row on one server, as a run does (the
after side over trials 8, 9 and 10 of the record, so each round's prompt is
new), and the first round counts: it pays for reading each agent's static
prefix once. Prompt-evaluation and generation seconds are the server's own
timings. Usage: `.venv/bin/python benchmarks/llm_round.py [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents import Advisor, EmbeddedServer, Evaluator, Optimizer, Transcript, make_client
from agents.records import TrialRecord, scored, val
from graphs import proposers, rounds
from graphs.state import Deps
from lgt import methods
from lgt.candidates import TPECandidates
from lgt.observer import RunObserver
from tuning_targets import make_target

DATA = ROOT / "benchmarks" / "data" / "llm_round_digits_t10.json"
Round = dict[str, float]


def _half_the_cores() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // 2)


def before(recorded: dict[str, Any], n_rounds: int) -> list[Round]:
    """The recorded requests, sent as they were, to the server configured as it was."""
    out = []
    with EmbeddedServer(fmt=None, threads=_half_the_cores(), flash_attn=False, cache_bytes=None) as server:
        for _ in range(n_rounds):
            spent = {"seconds": 0.0, "prompt": 0.0, "generation": 0.0}
            for request in recorded["requests"]:
                body = dict(request["body"]) | {"model": server.model}
                started = time.perf_counter()
                reply = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=600).json()
                timings = reply.get("timings") or {}
                weight = float(request["weight"])
                spent["seconds"] += weight * (time.perf_counter() - started)
                spent["prompt"] += weight * float(timings.get("prompt_ms", 0)) / 1000
                spent["generation"] += weight * float(timings.get("predicted_ms", 0)) / 1000
            out.append(spent)
    return out


class _Quiet:
    """A recorder that stores nothing: the benchmark only asks the agents."""

    def find(self, round_number: int) -> int | None:
        return None

    def record(self, round_number: int, record: Any, result: Any, extra: Any) -> int:
        return 0

    def note_verdict(self, round_number: int, trial_number: int, verdict: Any) -> None:
        pass

    def note_guidance(self, version: Any) -> None:
        pass

    def finish(self) -> None:
        pass


def after(recorded: dict[str, Any], n_rounds: int, transcript_path: Path) -> list[Round]:
    """Today's agents, on the recorded trials, against today's embedded server."""
    target = make_target("digits")
    trials = [cast(TrialRecord, dict(t) | {"departed": None}) for t in recorded["trials"]]
    out = []
    with EmbeddedServer() as server:
        client = make_client(server.llm_settings())
        transcript = Transcript(transcript_path)
        deps = Deps(target=target, evaluator=Evaluator(client, transcript), optimizer=Optimizer(client, transcript),
                    recorder=_Quiet(), progress=RunObserver(), advisor=Advisor(client, transcript), seed=1,
                    data_profile=target.data_profile(), proposer="hybrid",
                    candidates=TPECandidates(target.space, target.direction, target.default_config,
                                             sampler=lambda: methods.tpe_sampler(target, 1, 11)))
        for k in range(n_rounds):
            seen = trials[: len(trials) - n_rounds + k + 1]
            newest, earlier = seen[-1], seen[:-1]
            best = max((t for t in earlier if scored(t)), key=val, default=None)
            state: dict[str, Any] = {"trials": seen, "round": len(seen) + 1, "guidance": "", "guidance_history": [],
                                     "best": seen.index(max((t for t in seen if scored(t)), key=val))}
            calls_before = len(transcript.read())
            state["last_verdict"] = rounds.judge(deps, newest, best, state)  # type: ignore[arg-type]
            proposers.propose(state, deps)  # type: ignore[arg-type]
            deps.optimizer.rewrite(guidance_history=[], record=seen, metric=deps.metric, data=deps.data_profile)
            calls = transcript.read()[calls_before:]
            spent = {"seconds": 0.0, "prompt": 0.0, "generation": 0.0}
            for call in calls:
                weight = 1 / 3 if call["agent"] == "optimizer" else 1.0
                spent["seconds"] += weight * float(call["latency_s"])
                spent["prompt"] += weight * float(call.get("prompt_eval_s") or 0)
                spent["generation"] += weight * float(call.get("generation_s") or 0)
            out.append(spent)
    return out


def _mean(rounds_: list[Round], key: str) -> float:
    return statistics.fmean(r[key] for r in rounds_)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recorded = json.loads(DATA.read_text())
    print(f"one LGT round on the embedded model, {args.rounds} rounds each, both measured now", flush=True)
    old = before(recorded, args.rounds)
    new = after(recorded, args.rounds, Path(os.environ.get("TMPDIR", "/tmp")) / f"llm_round_{os.getpid()}.jsonl")
    print(f"{'':10} {'prompt eval s':>14} {'generation s':>13} {'LLM s/round':>12}")
    for name, side in (("before", old), ("after", new)):
        print(f"{name:10} {_mean(side, 'prompt'):14.2f} {_mean(side, 'generation'):13.2f} "
              f"{_mean(side, 'seconds'):12.2f}")
    print(f"per round, each: before {[round(r['seconds'], 1) for r in old]}, after {[round(r['seconds'], 1) for r in new]}")
    print(f"ratio before/after: {_mean(old, 'seconds') / _mean(new, 'seconds'):.2f} (target >= 4)")


if __name__ == "__main__":
    main()
