"""`lgt tune`: an LGT run, from request to change log.

This is where the pieces meet: the target, the study storage, the LLM
(a configured endpoint, or the embedded local model), the transcript, the
checkpointer and the graph. Everything else is injected into the graph.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
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
    preflight,
)
from graphs.batch import build_batch_graph
from graphs.state import Deps
from graphs.tuning import build_graph
from lgt import leases, methods, reporting
from lgt.candidates import TPECandidates
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.options import OPTIONS, AgentsOptions
from lgt.outputs import check_folder, check_storage, file_writes, storage_writes
from lgt.recorder import StudyDispatcher, StudyRecorder
from lgt.reporting.publish import publish_run
from lgt.runs import RunRequest, RunSpec, build_target, new_run_id
from lgt.settings import default_storage_url, run_path
from lgt.studies import (
    add_wall_time,
    create_study,
    graph_thread,
    libpq_url,
    load_study,
    open_storage,
    redact_url,
    refuse_existing_run,
    resume_command,
)
from lgt.vocabulary import WORDS as WORDS_MEANING
from lgt.vocabulary import Words, WordsOption
from tuning_targets import Target

Approver = Callable[[dict[str, Any]], dict[str, Any]]
# Rounds in a row whose Advisor fell back (the endpoint failing) before the run stops, resumable.
FALLBACKS_BEFORE_STOP = 3


@dataclass(kw_only=True)
class TuneRequest(RunRequest, AgentsOptions):
    """An LGT run: a run request, the agents' options (`lgt.options`), and lgt tune's own."""

    method: str = "lgt"  # an agents method of `lgt.methods`; its proposer is how the round's config is chosen
    approve: bool = False
    parallel: int = OPTIONS["parallel"].field()  # proposals per round; above 1, `lgt worker`s train them
    adapt_check: bool = OPTIONS["adapt_check"].field()  # A/B-check each in-run change from a snapshot
    # Stop after a few rounds the Advisor fell back in a row; "tpe": go on with TPE.
    on_llm_failure: str = OPTIONS["on_llm_failure"].field()

    def check(self) -> None:
        super().check()  # with every option's own check (`lgt.options.check_fields`)
        if not methods.get(self.method).is_agents:
            raise UserError(f"{self.method} is a classic method: run it with `lgt baseline --method {self.method}`")
        if self.parallel > 1 and self.approve:
            raise UserError("--approve works one proposal at a time; use it with --parallel 1")
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


# `--words`: how the agents word things (`lgt.vocabulary.WORDS` says what each means).
WORDS: tuple[WordsOption, ...] = tuple(WORDS_MEANING)


def resolve_words(words: str, settings: LLMSettings) -> str:
    """`--words` as the run uses it: auto is menu on the embedded model, free on an endpoint."""
    if words == "auto":
        return "menu" if settings.embedded else "free"
    return words


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


@dataclass(frozen=True)
class _Options:
    """How an LGT run was started; stored on its study so a resume keeps them."""

    parallel: int
    optimize_every: int
    adapt: str
    adapt_check: bool
    candidates: int
    on_llm_failure: str
    words: str = "free"  # as resolved for the run (never "auto"); runs stored before it existed were free

    @classmethod
    def of(cls, request: TuneRequest, stored: dict[str, Any] | None = None) -> _Options:
        """The request's options (each field is a `TuneRequest` one), as stored on the study when resuming."""
        given = {f.name: getattr(request, f.name) for f in dataclasses.fields(cls)}
        return cls(**(given | {k: v for k, v in (stored or {}).items() if k in given}))


def _spec(request: TuneRequest, storage_url: str) -> tuple[RunSpec, _Options, bool]:
    """The run to start or continue, read without writing anything: (spec, options, resuming).

    A run another live process drives is refused here, before the LLM starts.
    """
    if not request.resume:
        if request.run_id:
            refuse_existing_run(storage_url, request.run_id)  # before the LLM starts: a taken id is one line
        run_id = request.run_id or new_run_id(request.target, request.method, request.seed)
        spec = RunSpec.of(request, run_id, request.method, request.trials)
        return spec, _Options.of(request), False
    study = load_study(open_storage(storage_url), request.resume)
    spec = RunSpec.from_study(study)
    method = methods.find(spec.method)
    if method is None or not method.is_agents:
        raise UserError(f"run {spec.run_id!r} is a {spec.method} baseline, not an LGT run: continue it with "
                        f"`{resume_command(spec.run_id, False, storage_url)}`")
    leases.check_free(study, _busy_hint(storage_url, spec.run_id))
    return spec, _Options.of(request, dict(study.user_attrs)), True


def _busy_hint(url: str, run_id: str) -> str:
    return f"let it finish, or stop it and continue with `{resume_command(run_id, True, url)}`"


def _create(storage: optuna.storages.BaseStorage, spec: RunSpec, target: Target, options: _Options,
            url: str) -> optuna.Study:
    study = create_study(storage, spec, target, url=url)
    for key, value in vars(options).items():
        study.set_user_attr(key, value)
    return study


def run_tune(request: TuneRequest, observer: RunObserver | None = None, approver: Approver | None = None,
             client_factory: Callable[[LLMSettings], LLMClient] = make_client,
             llm: LLMSettings | None = None) -> dict[str, Any]:
    """Run (or resume) an LGT run and write its outputs; returns the summary.

    Nothing is written until the target's data has been read, the results
    folder and the storage were found writable, and the LLM endpoint has
    answered a preflight request, so a mistyped URL or a dead server is one
    line and an untouched storage. The run is driven under a lease
    (`lgt.leases`): a second process never drives it at the same time.
    `client_factory` lets tests hand in a client whose HTTP is faked; by
    default the real `ChatOpenAI` client is built from the settings. `llm`
    skips endpoint resolution (the bench starts the embedded model once).
    """
    request.check()
    observer = observer or RunObserver()
    storage_url = request.storage or default_storage_url()
    check_storage(storage_url)
    spec, options, resuming = _spec(request, storage_url)
    folder = request.out_dir or run_path(spec.run_id)
    check_folder(folder)
    target = build_target(spec)
    given = contextlib.nullcontext(llm) if llm else llm_settings(request.llm_model, request.llm_base_url, observer)
    with given as settings:
        client = client_factory(settings)
        preflight(client)
        options = dataclasses.replace(options, words=resolve_words(options.words, settings))
        storage = open_storage(storage_url)
        create = None if resuming else functools.partial(_create, storage, spec, target, options, storage_url)
        with leases.driving(storage_url, storage, spec.run_id, create=create,
                            hint=_busy_hint(storage_url, spec.run_id)) as study, \
                storage_writes(storage_url, spec.run_id, agents=True):
            folder.mkdir(parents=True, exist_ok=True)
            if not resuming:
                _set_aside_old_transcript(folder, observer)
            study.set_user_attr("llm_model", settings.model)
            started_at = time.perf_counter()
            try:
                with checkpointer(storage_url, folder) as saver:
                    _drive(request, spec, target, study, options, settings, client, saver, folder, observer,
                           approver, storage_url)
            finally:
                with contextlib.suppress(Exception):  # a storage that just failed cannot take the wall time either
                    add_wall_time(study, time.perf_counter() - started_at)
    with file_writes(storage_url, folder):
        summary = reporting.write_run_files(storage_url, spec.run_id, folder)
    summary |= {"transcript": str(folder / "transcript.jsonl"), "llm_model": settings.model}
    observer.on_run_end(summary)
    return summary


def _set_aside_old_transcript(folder: Path, observer: RunObserver) -> None:
    """A new run in the folder of a deleted study of the same id keeps the old transcript apart, renamed.

    The transcript is the run's record of LLM calls and the source of its
    LLM seconds and tokens (`Transcript.usage`); appended to, the new run
    would count the old run's calls as its own.
    """
    old = folder / "transcript.jsonl"
    if not old.exists():
        return
    kept = folder / f"transcript.before-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    old.rename(kept)
    observer.on_message(f"the folder held the transcript of an earlier run under this id: kept as {kept.name}")


def _drive(request: TuneRequest, spec: RunSpec, target: Target, study: optuna.Study, options: _Options,
           settings: LLMSettings, client: LLMClient, saver: BaseCheckpointSaver[Any], folder: Path,
           observer: RunObserver, approver: Approver | None, storage_url: str) -> None:
    """Build the agents and the graph, and run the graph until the budget is spent (or a person must answer)."""
    transcript = Transcript(folder / "transcript.jsonl", secrets=settings.secrets)
    parallel = options.parallel
    hint = f"start workers with: lgt worker --storage {redact_url(storage_url)} --study {spec.run_id}"
    recorder = StudyRecorder(study, target, spec.method, on_change=lambda: publish_run(study, folder))
    words: Words = "menu" if options.words == "menu" else "free"
    proposer = methods.get(spec.method).proposer
    assert proposer is not None, "an LGT run's method is an agents method"
    deps = Deps(target=target, evaluator=Evaluator(client, transcript, words),
                optimizer=Optimizer(client, transcript, words), words=words,
                recorder=recorder, progress=observer, seed=spec.seed, advisor=Advisor(client, transcript, words),
                batch_advisor=BatchAdvisor(client, transcript, words) if parallel > 1 else None,
                optimize_every=options.optimize_every, llm_usage=transcript.usage, parallel=parallel,
                dispatcher=StudyDispatcher(study, spec, hint=hint) if parallel > 1 else None,
                adapt=options.adapt, adapt_check=options.adapt_check, epoch_budget=spec.epoch_budget,
                data_profile=target.data_profile(), proposer=proposer,
                n_candidates=options.candidates, stop_after_fallbacks=(
                    FALLBACKS_BEFORE_STOP if options.on_llm_failure == "stop" else None),
                candidates=TPECandidates(target.space, target.direction, study.user_attrs["default_config"],
                                         sampler=lambda: methods.tpe_sampler(target, spec.seed, spec.trials)))
    graph = (build_batch_graph() if parallel > 1 else build_graph(approve=request.approve)).compile(
        checkpointer=saver)
    thread: RunnableConfig = {"configurable": {"thread_id": graph_thread(study, spec.run_id)}}
    snapshot = graph.get_state(thread)
    deps.session_start = len(snapshot.values.get("trials", []))
    started = bool(snapshot.values)
    observer.on_run_start(spec.run_id, spec.trials, len(snapshot.values.get("trials", [])), target.metric)
    payload: Any = None if started else {"run_id": spec.run_id, "budget": spec.trials}
    while True:
        result = graph.invoke(payload, thread, context=deps, version="v1")
        interrupts = result.get("__interrupt__") if isinstance(result, dict) else None
        if not interrupts:
            return
        answer = approver(interrupts[0].value) if approver else {"action": "accept"}
        payload = Command(resume=answer)
