"""lgt's agents as an Optuna sampler: the LGT loop, its checks and its change log, on any objective.

    study = optuna.create_study(direction="maximize", sampler=lgt.LGTSampler(description="...", seed=0))
    study.optimize(objective, n_trials=20)

The loop is the one `lgt tune` runs (`graphs.tuning`), with its `train`
node in external mode: instead of training, it pauses with the round's
config and waits for the result. The sampler drives it one step per ask and
per tell:

- ask (`sample_relative`): the round's config, if no other trial has taken
  it; a trial asked while the round's trial runs (``n_jobs > 1``, several
  processes) gets TPE's pick on the live study instead, and its result
  reaches the agents as evidence at the next tell.
- tell (`after_trial`, while the trial is still RUNNING, so its attrs can be
  written): the graph resumes with the result; the Evaluator judges it, the
  Optimizer may rewrite the guidance, the Advisor chooses among TPE's
  candidates the next round's config, with the gate and every word check.

The very first trial is what the user enqueued, else TPE's start (nothing
is known of a define-by-run space before one trial ran). What the agents
need between trials (the graph's state: the gradient, the guidance, the
gate's record) is checkpointed in the study's own storage (PostgreSQL or
SQLite; in memory for an in-memory study), under a lock across threads and
processes, so a second process or a restart continues the same loop. The
proposal, its reasons and the verdict are stored as trial user attrs, as
for `lgt tune`, so `lgt report --storage URL --study NAME` and `lgt
dashboard` show the run.

An LLM that fails never raises into the study: an agent that cannot answer
falls back (TPE's pick, marked), and an endpoint that cannot be set up at
all leaves the agents off with one warning, TPE's picks marked as such.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import logging
import math
import os
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from agents import (
    Advisor,
    AgentFailure,
    Evaluator,
    LLMClient,
    LLMSettings,
    Optimizer,
    Transcript,
    make_client,
    preflight,
)
from agents.schemas import Choice, EpochProposal, EpochVerdict, Guidance, Proposal, Verdict
from graphs.proposals import perturb
from graphs.state import Deps
from graphs.tuning import build_graph
from lgt import methods
from lgt.candidates import TPECandidates
from lgt.errors import UserError
from lgt.objective import ObjectiveTarget, fit, learned, record_of, result_of, space_of
from lgt.observer import RunObserver
from lgt.options import OPTIONS, AgentsOptions, check_fields
from lgt.optuna_private import storage_of, storage_url, trial_id
from lgt.recorder import proposal_attrs
from lgt.studies import graph_thread, libpq_url, sqlite_file, study_direction
from tuning_targets import config_key

log = logging.getLogger("lgt.sampler")

BUDGET = 10**9  # the loop's trial budget: the study's optimize() decides when to stop
ROUND_ATTR = "lgt_round"  # the round whose config a trial took
FILL_ATTR = "lgt_fill"  # a trial asked while the round's trial ran: TPE's pick
ASKED_ATTR = "lgt_asked"  # the config a trial was handed (its params appear only as the objective asks for them)
FILL_TRIES = 200  # even draws for such a trial before a repeat is let through (a space smaller than the budget)
# Record keys stored with the trial, as `lgt.recorder` stores them for `lgt tune`.
_STORED = ("reasons", "expected_effect", "notes", "verdict", "evidence", "rationale", "replaced", "pick", "departed",
           "gated", "epochs_trained")


class LGTSampler(BaseSampler):
    """Language-Guided Tuning as an Optuna sampler: TPE's candidates, chosen and explained by LLM agents.

    Each round, TPE proposes a few candidate configs; the Advisor picks one
    (a gate in code keeps TPE's own pick while the Advisor's departures do
    worse); after the trial, the Evaluator judges it from the values it
    reported with ``trial.report`` and writes a textual gradient; every few
    rounds the Optimizer rewrites the Advisor's guidance. Every sentence is
    checked in code, and the whole run reads like `lgt tune`'s change log
    (``lgt report --storage URL --study NAME``).

    Args:
        description: What is tuned, in a few words ("ResNet-18 on my images"); the agents read it.
        seed: Seed for TPE's candidates and the order candidates are shown in.
        search_space: The distributions to sample; by default learned from the
            objective's ``suggest_*`` calls (define-by-run, conditional ones included).
        knob_notes: Per parameter, a note the agents read like lgt's own knob descriptions.
        metric: The name of the objective's value, as the agents and the change log say it.
        llm_base_url: Any OpenAI-compatible endpoint; else ``OPENAI_BASE_URL``, else (no key
            either) the embedded model, started on first use and stopped at exit.
        llm_model: The model name at the endpoint.
        words: "menu" (the agents pick from closed lists, code writes every sentence),
            "free" (they write; the checks replace what fails) or "auto" (menu for the
            embedded model, free for an endpoint).
        candidates: TPE's candidates the Advisor chooses among each round.
        optimize_every: The Optimizer rewrites the guidance every this many rounds (0: never).
        out_dir: A folder for transcript.jsonl (every LLM call) and changelog.md, kept
            up to date as the study runs; none by default.

    Example:
        .. code-block:: python

            import optuna
            import lgt

            def objective(trial):
                x = trial.suggest_float("x", -10, 10)
                return -((x - 2) ** 2)

            study = optuna.create_study(direction="maximize", sampler=lgt.LGTSampler(seed=0))
            study.optimize(objective, n_trials=10)
    """

    def __init__(self, *, description: str = "", seed: int | None = None,
                 search_space: Mapping[str, BaseDistribution] | None = None,
                 knob_notes: Mapping[str, str] | None = None, metric: str = "objective",
                 llm_base_url: str | None = None, llm_model: str | None = None,
                 words: str = OPTIONS["words"].default, candidates: int = OPTIONS["candidates"].default,
                 optimize_every: int = OPTIONS["optimize_every"].default, out_dir: str | Path | None = None,
                 client_factory: Callable[[LLMSettings], LLMClient] = make_client) -> None:
        # The agents' options as `lgt tune` and `lgt bench` define and check them (`lgt.options`), named by keyword.
        check_fields(AgentsOptions(llm_model=llm_model, llm_base_url=llm_base_url, optimize_every=optimize_every,
                                   candidates=candidates, words=words), python=True)
        self.description, self.seed = description, seed
        self.search_space = dict(search_space) if search_space else None
        self.knob_notes, self.metric = dict(knob_notes or {}), metric
        self.llm_base_url, self.llm_model, self.words = llm_base_url, llm_model, words
        self.candidates, self.optimize_every = candidates, optimize_every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.client_factory = client_factory
        # Not the seed of TPE's candidates (`lgt.candidates`): two TPEs seeded alike draw the same startup configs.
        self._tpe = _tpe(None if seed is None else seed + 7919)
        self._lock = threading.RLock()
        self._runs: dict[tuple[int, str], _Run] = {}

    # --- Optuna's sampler interface ----------------------------------------------------------------------------

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _single_objective(study)
        return learned(study, self.search_space)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        _single_objective(study)
        if not search_space:
            return {}
        with self._lock, self._run(study).locked():
            config = self._run(study).ask(trial, search_space)
        return {name: fit(config[name], d) for name, d in search_space.items() if name in config}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        _single_objective(study)
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._tpe.before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._tpe.after_trial(study, trial, state, values)
        if study._is_multi_objective():
            return
        with self._lock, self._run(study).locked():
            self._run(study).tell(trial, state, list(values) if values is not None else None)

    def _run(self, study: Study) -> _Run:
        key = (id(storage_of(study)), study.study_name)
        if key not in self._runs:
            self._runs[key] = _Run(self, study)
        return self._runs[key]


def _single_objective(study: Study) -> None:
    if study._is_multi_objective():
        raise ValueError("LGTSampler tunes one objective; the agents compare trials by a single value")


def _tpe(seed: int | None) -> TPESampler:
    """TPE for the first trial, for trials asked while a round runs, and for parameters outside the loop's space."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TPESampler(seed=seed, multivariate=True, group=True)


class _Run:
    """One study's LGT loop: its graph, checkpointed in the study's storage, and the agents around it."""

    def __init__(self, sampler: LGTSampler, study: Study) -> None:
        self.sampler, self.study = sampler, study
        self.url = storage_url(study)
        self._thread: RunnableConfig | None = None
        self.saver = _saver(self.url)
        self.graph = build_graph().compile(checkpointer=self.saver)
        self._agents: tuple[Evaluator | _Off, Optimizer | _Off, Advisor | _Off] | None = None
        self._transcript: Transcript | None = None
        self._sources: dict[str, TPECandidates] = {}

    @property
    def thread(self) -> RunnableConfig:
        """The graph's checkpoint thread (`graph_thread`), made on first use, which is under `locked`."""
        if self._thread is None:
            self._thread = {"configurable": {"thread_id": graph_thread(self.study,
                                                                       f"lgt-sampler:{self.study.study_name}")}}
        return self._thread

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One graph step at a time across processes sharing the storage (threads share the sampler's lock)."""
        with _study_lock(self.url, self.study.study_name):
            yield

    # --- the two steps ----------------------------------------------------------------------------------------

    def ask(self, trial: FrozenTrial, search_space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
        """The config for `trial`: the waiting round's, if free, else TPE's pick on the live study."""
        waiting = self._catch_up()
        if waiting is not None and self._holder(int(waiting["round"])) is None:
            self._set(trial, ROUND_ATTR, int(waiting["round"]))
            return self._handed(trial, self._unique(trial, dict(waiting["config"]), search_space))
        others = [t for t in self.study.get_trials(deepcopy=False) if t.number != trial.number]
        if not self._started() and not any(t.state == TrialState.RUNNING for t in others):
            return {}  # the first trial: enqueued values, else TPE's start
        self._set(trial, FILL_ATTR, True)
        tpe = self.sampler._tpe
        taken = self._taken(trial, search_space)
        if waiting is not None:
            taken.add(config_key({k: v for k, v in waiting["config"].items() if k in search_space}))
        picked = dict(tpe.sample_relative(self.study, trial, tpe.infer_relative_search_space(self.study, trial)))
        config = {name: picked[name] if name in picked else tpe.sample_independent(self.study, trial, name, d)
                  for name, d in search_space.items()}  # TPE's own startup picks each knob on its own
        rng = random.Random(trial.number)
        for _ in range(FILL_TRIES):  # never the config of another trial, running or done, nor the waiting round's:
            if config_key(config) not in taken:  # TPE's pick, else draws spread evenly over the space
                break
            config = {name: _draw(d, rng) for name, d in search_space.items()}
        return self._handed(trial, config)

    def _handed(self, trial: FrozenTrial, config: dict[str, Any]) -> dict[str, Any]:
        """`config`, noted on the trial: Optuna stores a trial's params only as its objective asks for them."""
        self._set(trial, ASKED_ATTR, config)
        return config

    def _taken(self, trial: FrozenTrial, search_space: Mapping[str, BaseDistribution]) -> set[str]:
        """The configs of every other trial: what finished ones ran, what running ones were handed."""
        taken = set()
        for other in self.study.get_trials(deepcopy=False):
            if other.number == trial.number:
                continue
            config = other.params if other.state.is_finished() else other.user_attrs.get(ASKED_ATTR) or other.params
            taken.add(config_key({k: v for k, v in config.items() if k in search_space}))
        return taken

    def _unique(self, trial: FrozenTrial, config: dict[str, Any],
                search_space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
        """The round's config, nudged if a trial asked meanwhile (``n_jobs > 1``) already runs the same one.

        The round's config was chosen before that trial was asked; the
        objective then runs the nudged values, and the loop records what ran.
        """
        taken = self._taken(trial, search_space)
        if config_key({k: v for k, v in config.items() if k in search_space}) not in taken:
            return config
        space = space_of(dict(search_space), self.sampler.knob_notes, config)
        nudged, _ = perturb(space, {k: v for k, v in config.items() if k in search_space}, taken,
                            random.Random(trial.number))
        return config | nudged

    def tell(self, trial: FrozenTrial, state: TrialState, values: list[float] | None) -> None:
        """A finished trial: the round's own resumes the loop; one asked meanwhile waits to join its evidence."""
        if not self._started():
            self._start(trial)
            self._set(trial, ROUND_ATTR, 1)
            self._resume(trial, state, values)
            return
        waiting = self._waiting()
        if waiting is not None and trial.user_attrs.get(ROUND_ATTR) == waiting["round"]:
            self._resume(trial, state, values)

    # --- the graph --------------------------------------------------------------------------------------------

    def _started(self) -> bool:
        return bool(self.graph.get_state(self.thread).values)

    def _waiting(self) -> dict[str, Any] | None:
        """The round's config while the graph waits for its result (paused in `train`), else None."""
        snapshot = self.graph.get_state(self.thread)
        for task in snapshot.tasks:
            for pending in task.interrupts:
                if isinstance(pending.value, dict) and "config" in pending.value:
                    return dict(pending.value)
        return None

    def _holder(self, round_number: int) -> FrozenTrial | None:
        """The trial that took this round's config, unless it finished without its result reaching the loop."""
        for trial in self.study.get_trials(deepcopy=False):
            if trial.user_attrs.get(ROUND_ATTR) == round_number:
                return trial
        return None

    def _catch_up(self) -> dict[str, Any] | None:
        """The waiting round; first, a round whose trial finished but was never told (its process died) resumes."""
        waiting = self._waiting()
        while waiting is not None:
            holder = self._holder(int(waiting["round"]))
            if holder is None or holder.state == TrialState.RUNNING:
                return waiting
            self._resume(holder, holder.state, holder.values)
            waiting = self._waiting()
        return None

    def _start(self, first: FrozenTrial) -> None:
        """The loop's first round is the first trial that finished: the shared starting point."""
        deps = self._deps(first)
        attrs = {"run_id": self.study.study_name, "target": self.sampler.description or "objective",
                 "method": "lgt", "metric": self.sampler.metric, "seed": self.sampler.seed or 0,
                 "trials": len(self.study.trials), "default_config": dict(first.params), "sampler": "LGTSampler",
                 "target_task": "your objective", "optimize_every": self.sampler.optimize_every,
                 "candidates": self.sampler.candidates, "words": deps.words}
        for key, value in attrs.items():
            if key not in self.study.user_attrs:
                self.study.set_user_attr(key, value)
        self.graph.invoke({"run_id": self.study.study_name, "budget": BUDGET}, self.thread, context=deps)

    def _resume(self, trial: FrozenTrial, state: TrialState, values: list[float] | None) -> None:
        told = {t.get("number") for t in (self.graph.get_state(self.thread).values.get("trials") or [])}
        others = [record_of(t, self._direction(), self.sampler.metric) for t in self.study.get_trials(deepcopy=False)
                  if t.number != trial.number and t.state.is_finished() and t.number not in told
                  and ROUND_ATTR not in t.user_attrs]
        deps = self._deps(trial)
        payload = {"result": result_of(trial, state, values, self._direction()), "config": dict(trial.params),
                   "others": others}
        self.graph.invoke(Command(resume=payload), self.thread, context=deps)
        self.study.set_user_attr("trials", len(self.study.trials))
        self._publish(trial, state, values)

    def _publish(self, trial: FrozenTrial, state: TrialState, values: list[float] | None) -> None:
        """The dashboard's notes (and changelog.md, with `out_dir`), the trial being told counted as finished.

        Optuna finishes the trial only after the sampler has heard of it, so
        read from the storage now the run would end one round short.
        """
        from lgt.reporting import changelog
        from lgt.reporting.notes import write_notes
        from lgt.reporting.store import Run, read_run

        run = read_run(self.study)
        told = copy.copy(storage_of(self.study).get_trial(trial_id(trial)))
        told.state = state
        told.values = values if state == TrialState.COMPLETE else None
        trials = [t for t in run.trials if t.number != told.number] + [told]
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
        sign = 1.0 if run.maximize else -1.0
        best = max(complete, key=lambda t: (sign * float(t.value or 0.0), -t.number)) if complete else None
        run = Run(run.name, run.attrs, run.maximize, trials, best)
        if self.sampler.out_dir is not None:
            changelog.write(run, self.sampler.out_dir)
        write_notes(self.study, run)

    def _deps(self, trial: FrozenTrial) -> Deps:
        """What the nodes need this step: the space as known now, TPE's candidates on it, the agents."""
        state = self.graph.get_state(self.thread).values
        trials = list(state.get("trials") or [])
        default = dict(self.study.user_attrs.get("default_config") or trial.params)
        distributions = learned(self.study, self.sampler.search_space) | dict(trial.distributions)
        space = space_of(distributions, self.sampler.knob_notes, default)
        target = ObjectiveTarget(space, space.validate(default, strict=False).config, direction=self._direction(),
                                 metric=self.sampler.metric, description=self.sampler.description)
        evaluator, optimizer, advisor = self._agents_ready()
        transcript = self._transcript or Transcript(None)
        return Deps(target=target, evaluator=evaluator, optimizer=optimizer, advisor=advisor,
                    recorder=_TrialRecorder(self.study), progress=RunObserver(), seed=self.sampler.seed or 0,
                    optimize_every=self.sampler.optimize_every, llm_usage=transcript.usage,
                    data_profile=target.data_profile(), proposer="hybrid", n_candidates=self.sampler.candidates,
                    stop_after_fallbacks=None, external=True, words=self._words(),
                    candidates=self._source(target, len(trials)))

    def _source(self, target: ObjectiveTarget, known: int) -> TPECandidates:
        """TPE's candidates on the space as known now (rebuilt, replaying the history, when it grows)."""
        key = config_key({name: repr(d) for name, d in target.space.distributions().items()})
        if key not in self._sources:
            budget = max(known + 10, 20)
            self._sources = {key: TPECandidates(target.space, target.direction, target.default_config,
                                                sampler=lambda: methods.tpe_sampler(target, self.sampler.seed or 0,
                                                                                    budget))}
        return self._sources[key]

    def _direction(self) -> Any:
        return study_direction(self.study)

    def _words(self) -> str:
        stored = self.study.user_attrs.get("words")
        return str(stored) if stored in ("menu", "free") else self._resolved_words

    # --- the LLM ----------------------------------------------------------------------------------------------

    def _agents_ready(self) -> tuple[Evaluator | _Off, Optimizer | _Off, Advisor | _Off]:
        """The agents, set up on first use; an endpoint that cannot be set up leaves them off, with one warning."""
        if self._agents is not None:
            return self._agents
        from lgt.tune import resolve_words

        sampler = self.sampler
        settings = LLMSettings.from_sources(model=sampler.llm_model, base_url=sampler.llm_base_url)
        try:
            settings = _embedded(settings)
            client = sampler.client_factory(settings)
            preflight(client)
        except UserError as exc:
            log.warning("LGTSampler: the agents are off (%s); TPE's picks run, marked as fallbacks", exc)
            self._resolved_words = "free"
            off = _Off(str(exc))
            self._agents = (off, off, off)
            return self._agents
        self._resolved_words = resolve_words(sampler.words, settings)
        words: Any = "menu" if self._resolved_words == "menu" else "free"
        path = sampler.out_dir / "transcript.jsonl" if sampler.out_dir is not None else None
        self._transcript = Transcript(path, secrets=settings.secrets)
        self.study.set_user_attr("llm_model", settings.model)
        self._agents = (Evaluator(client, self._transcript, words), Optimizer(client, self._transcript, words),
                        Advisor(client, self._transcript, words))
        return self._agents

    _resolved_words = "free"

    # --- storage ----------------------------------------------------------------------------------------------

    def _set(self, trial: FrozenTrial, key: str, value: Any) -> None:
        storage_of(self.study).set_trial_user_attr(trial_id(trial), key, value)


_EMBEDDED: list[Any] = []  # the embedded server, started once per process and stopped at exit


def _embedded(settings: LLMSettings) -> LLMSettings:
    """`settings`, or the embedded model's when no endpoint and no key are configured (started once)."""
    from agents import EmbeddedServer, needs_embedded_server

    if not needs_embedded_server(settings):
        return settings
    if not _EMBEDDED:
        log.warning("LGTSampler: no LLM endpoint or key configured: starting the embedded model on 127.0.0.1")
        _EMBEDDED.append(EmbeddedServer().start())
    settings = _EMBEDDED[0].llm_settings()
    assert isinstance(settings, LLMSettings)
    return settings


def _draw(distribution: BaseDistribution, rng: random.Random) -> Any:
    """A value drawn evenly from a distribution (on its log scale or step grid), as RandomSampler would."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return rng.choice(distribution.choices)
    assert isinstance(distribution, optuna.distributions.FloatDistribution | optuna.distributions.IntDistribution)
    low, high = float(distribution.low), float(distribution.high)
    value = math.exp(rng.uniform(math.log(low), math.log(high))) if distribution.log else rng.uniform(low, high)
    return fit(value, distribution)


class _Off:
    """The agents when no LLM can be reached: every call fails, so each round falls back to TPE's pick, marked."""

    name = "agents off"

    def __init__(self, why: str) -> None:
        self.why = why

    def _fail(self) -> AgentFailure:
        return AgentFailure("LLM", f"unavailable: {self.why}", 0)

    def judge(self, *args: Any, **kwargs: Any) -> Verdict:
        raise self._fail()

    def judge_epoch(self, *args: Any, **kwargs: Any) -> EpochVerdict:
        raise self._fail()

    def rewrite(self, *args: Any, **kwargs: Any) -> Guidance:
        raise self._fail()

    def choose(self, *args: Any, **kwargs: Any) -> Choice:
        raise self._fail()

    def pick(self, *args: Any, **kwargs: Any) -> Choice:
        raise self._fail()

    def propose(self, *args: Any, **kwargs: Any) -> Proposal:
        raise self._fail()

    def adjust(self, *args: Any, **kwargs: Any) -> EpochProposal:
        raise self._fail()


class _TrialRecorder:
    """The graph's `TrialRecorder` for a sampled study: a round's record goes onto the trial that ran it.

    That trial is still RUNNING while Optuna tells the sampler of it, so its
    user attrs can be written; the proposal, its reasons and the verdict are
    stored under the names `lgt.recorder` uses, so every report reads them.
    """

    def __init__(self, study: Study) -> None:
        self.study = study

    def find(self, round_number: int) -> int | None:
        for trial in self.study.get_trials(deepcopy=False):
            if trial.user_attrs.get("round") == round_number:
                return trial.number
        return None

    def record(self, round_number: int, record: Mapping[str, Any], result: Mapping[str, Any],
               extra: Mapping[str, Any]) -> int:
        trial = next(t for t in self.study.get_trials(deepcopy=False) if t.user_attrs.get(ROUND_ATTR) == round_number)
        attrs = {"method": "lgt", "config": dict(record["config"]), "status": result["status"],
                 "fail_reason": result.get("fail_reason"), "history": list(result.get("history") or []),
                 "best_epoch": result.get("best_epoch"), "seconds": result.get("seconds"), **proposal_attrs(record),
                 **{k: record[k] for k in _STORED if k in record}, **dict(extra), "round": round_number}
        storage = storage_of(self.study)
        for key, value in attrs.items():
            storage.set_trial_user_attr(trial_id(trial), key, value)
        return trial.number

    def note_verdict(self, round_number: int, trial_number: int, verdict: Mapping[str, Any]) -> None:
        self.study.set_user_attr(f"verdict_round_{round_number}", {"trial": trial_number, **verdict})

    def note_guidance(self, version: Mapping[str, Any]) -> None:
        key = f"guidance_refused_{version['after_round']}" if version.get("refused") else \
            f"guidance_v{version['version']}"
        self.study.set_user_attr(key, dict(version))

    def finish(self) -> None:
        pass


def _saver(url: str | None) -> BaseCheckpointSaver[Any]:
    """Where the loop's state lives: in the study's own database (PostgreSQL, SQLite), else in this process."""
    if url is not None and libpq_url(url) is not None:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        pg = psycopg.connect(libpq_url(url) or "", autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(pg)
        saver.setup()
        return saver
    path = sqlite_file(url)
    if path is not None:
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(path, check_same_thread=False, timeout=60)
        return SqliteSaver(conn)
    return InMemorySaver()


@contextlib.contextmanager
def _study_lock(url: str | None, study: str) -> Iterator[None]:
    """Held for one graph step, between processes: a PostgreSQL advisory lock, or `flock` beside an SQLite file."""
    if url is not None and libpq_url(url) is not None:
        import sqlalchemy

        from lgt.studies import sqlalchemy_url

        engine = sqlalchemy.create_engine(sqlalchemy_url(url), poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                key = sqlalchemy.text("SELECT pg_advisory_lock(hashtext(:k))")
                conn.execute(key, {"k": f"lgt sampler {study}"})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"lgt sampler {study}"})
        finally:
            engine.dispose()
        return
    path = sqlite_file(url)
    if path is None:
        yield
        return
    fd = os.open(f"{path}.lgt-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
