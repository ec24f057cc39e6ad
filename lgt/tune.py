"""`lgt tune`: an LGT run, from request to change log.

This is where the pieces meet: the target, the study storage, the LLM
(a configured endpoint, or the embedded local model), the transcript, the
checkpointer and the graph. Everything else is injected into the graph.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agents import (
    Advisor,
    BatchAdvisor,
    EmbeddedServer,
    Evaluator,
    LLMClient,
    LLMSettings,
    Optimizer,
    Transcript,
    make_client,
    needs_embedded_server,
)
from graphs.batch import build_batch_graph
from graphs.state import Deps
from graphs.tuning import build_graph
from lgt import methods, reporting
from lgt.candidates import TPECandidates
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.recorder import StudyDispatcher, StudyRecorder
from lgt.reporting.publish import publish_run
from lgt.runs import RunRequest, RunSpec, build_target, new_run_id
from lgt.settings import default_storage_url, run_dir
from lgt.studies import add_wall_time, create_study, libpq_url, load_study, open_storage, redact_url

Approver = Callable[[dict[str, Any]], dict[str, Any]]
MAX_CANDIDATES = 8  # each is a line of the Advisor's prompt


@dataclass(kw_only=True)
class TuneRequest(RunRequest):
    method: str = "lgt"  # an agents method of `lgt.methods`; its proposer is how the round's config is chosen
    candidates: int = 4  # TPE's candidates the Advisor chooses among (hybrid)
    llm_model: str | None = None
    llm_base_url: str | None = None
    optimize_every: int = 3
    approve: bool = False
    parallel: int = 1  # proposals per round; above 1, `lgt worker`s train them
    adapt: str = "trial"  # "epoch": the agents also adjust dynamic knobs between epochs of each trial
    adapt_check: bool = True  # A/B-check each in-run change from a snapshot

    def check(self) -> None:
        super().check()
        if not methods.get(self.method).is_agents:
            raise UserError(f"{self.method} is a classic method: run it with `lgt baseline --method {self.method}`")
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise UserError(f"--candidates must be from 1 to {MAX_CANDIDATES}, got {self.candidates}")
        if self.optimize_every < 0:
            raise UserError(f"--optimize-every must be 0 (never) or more, got {self.optimize_every}")
        if self.parallel < 1:
            raise UserError(f"--parallel must be at least 1, got {self.parallel}")
        if self.parallel > 1 and self.approve:
            raise UserError("--approve works one proposal at a time; use it with --parallel 1")
        if self.adapt not in ("trial", "epoch"):
            raise UserError(f"--adapt must be 'trial' or 'epoch', got {self.adapt!r}")
        if self.adapt == "epoch" and self.parallel > 1:
            raise UserError("--adapt epoch runs the agents inside each trial; use it with --parallel 1")


@contextlib.contextmanager
def checkpointer(storage_url: str, folder: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """Where the graph's checkpoints live: beside the study when it is PostgreSQL.

    Then a driver can be restarted on any machine that reaches the database
    and resume; otherwise an SQLite file in the run dir.
    """
    url = libpq_url(storage_url)
    if url is not None:
        from langgraph.checkpoint.postgres import PostgresSaver

        try:
            with PostgresSaver.from_conn_string(url) as saver:
                saver.setup()
                yield saver
        except Exception as exc:
            if isinstance(exc, (UserError, KeyboardInterrupt)) or "psycopg" not in type(exc).__module__:
                raise
            raise UserError(f"checkpoints in {redact_url(storage_url)}: {str(exc).splitlines()[0]}") from None
        return
    with contextlib.closing(sqlite3.connect(folder / "checkpoint.db", check_same_thread=False)) as conn:
        yield SqliteSaver(conn)


@contextlib.contextmanager
def llm_settings(model: str | None, base_url: str | None, observer: RunObserver) -> Iterator[LLMSettings]:
    """The configured endpoint, or the embedded model served while the context lasts."""
    settings = LLMSettings.from_sources(model=model, base_url=base_url)
    if not needs_embedded_server(settings):
        yield settings
        return
    observer.on_message("no LLM endpoint or key configured: starting the embedded model (SmolLM2-135M) "
                        "on 127.0.0.1")
    with EmbeddedServer() as server:
        yield server.llm_settings()


def run_tune(request: TuneRequest, observer: RunObserver | None = None, approver: Approver | None = None,
             client_factory: Callable[[LLMSettings], LLMClient] = make_client,
             llm: LLMSettings | None = None) -> dict[str, Any]:
    """Run (or resume) an LGT run and write its outputs; returns the summary.

    `client_factory` lets tests hand in a client whose HTTP is faked; by
    default the real `ChatOpenAI` client is built from the settings. `llm`
    skips endpoint resolution (the bench starts the embedded model once).
    """
    request.check()
    observer = observer or RunObserver()
    storage_url = request.storage or default_storage_url()
    if request.resume:
        storage = open_storage(storage_url)
        spec = RunSpec.from_study(load_study(storage, request.resume))
        target = build_target(spec)
        study = load_study(storage, spec.run_id)
        parallel = int(study.user_attrs.get("parallel", 1))
        optimize_every = int(study.user_attrs.get("optimize_every", request.optimize_every))
        n_candidates = int(study.user_attrs.get("candidates", request.candidates))
        adapt = str(study.user_attrs.get("adapt", "trial"))
        adapt_check = bool(study.user_attrs.get("adapt_check", True))
    else:
        parallel, optimize_every, n_candidates = request.parallel, request.optimize_every, request.candidates
        adapt, adapt_check = request.adapt, request.adapt_check
        spec = RunSpec(request.run_id or new_run_id(request.target, request.method, request.seed), request.target,
                       request.method, request.seed, request.trials, request.data_dir, request.target_column, request.task,
                       request.epoch_budget)
        target = build_target(spec)
        storage = open_storage(storage_url)
        study = create_study(storage, spec, target)
        study.set_user_attr("parallel", parallel)
        study.set_user_attr("optimize_every", optimize_every)
        study.set_user_attr("adapt", adapt)
        study.set_user_attr("adapt_check", adapt_check)
        study.set_user_attr("candidates", n_candidates)
    folder = request.out_dir or run_dir(spec.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    thread: RunnableConfig = {"configurable": {"thread_id": spec.run_id}}
    started_at = time.perf_counter()
    given = contextlib.nullcontext(llm) if llm else llm_settings(request.llm_model, request.llm_base_url, observer)
    with given as settings, checkpointer(storage_url, folder) as saver:
        study.set_user_attr("llm_model", settings.model)
        transcript = Transcript(folder / "transcript.jsonl", secrets=settings.secrets)
        client = client_factory(settings)
        hint = f"start workers with: lgt worker --storage {redact_url(storage_url)} --study {spec.run_id}"
        recorder = StudyRecorder(study, target, spec.method,
                                 on_change=lambda: publish_run(study, folder))
        deps = Deps(target=target, evaluator=Evaluator(client, transcript), optimizer=Optimizer(client, transcript),
                    recorder=recorder, progress=observer, seed=spec.seed,
                    advisor=Advisor(client, transcript),
                    batch_advisor=BatchAdvisor(client, transcript) if parallel > 1 else None,
                    optimize_every=optimize_every, llm_usage=transcript.usage, parallel=parallel,
                    dispatcher=StudyDispatcher(study, target, spec.method, hint=hint) if parallel > 1 else None,
                    adapt=adapt, adapt_check=adapt_check, epoch_budget=spec.epoch_budget,
                    data_profile=target.data_profile(), proposer=str(methods.get(spec.method).proposer),
                    n_candidates=n_candidates, candidates=TPECandidates(
                        target.space, target.direction, study.user_attrs["default_config"],
                        sampler=lambda: methods.tpe_sampler(target, spec.seed, spec.trials)))
        graph = (build_batch_graph() if parallel > 1 else build_graph(approve=request.approve)).compile(
            checkpointer=saver)
        snapshot = graph.get_state(thread)
        started = bool(snapshot.values)
        observer.on_run_start(spec.run_id, spec.trials, len(snapshot.values.get("trials", [])), target.metric)
        payload: Any = None if started else {"run_id": spec.run_id, "budget": spec.trials}
        if started and not snapshot.next:
            payload = None  # finished already: invoking again is a no-op
        try:
            while True:
                result = graph.invoke(payload, thread, context=deps, version="v1")
                interrupts = result.get("__interrupt__") if isinstance(result, dict) else None
                if not interrupts:
                    break
                answer = approver(interrupts[0].value) if approver else {"action": "accept"}
                payload = Command(resume=answer)
        finally:
            add_wall_time(study, time.perf_counter() - started_at)
    summary = reporting.write_run_files(storage_url, spec.run_id, folder)
    summary |= {"transcript": str(folder / "transcript.jsonl"), "llm_model": settings.model}
    observer.on_run_end(summary)
    return summary
