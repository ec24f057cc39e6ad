"""`lgt bench`: every method on every target and seed, on equal budgets.

Each (target, method, seed) is one study in one storage, named
`<bench-id>.<target>.<method>.s<seed>`. The bench id is derived from what
is benchmarked, so running the same command again continues the same bench:
finished studies are skipped, unfinished ones resumed. A method that cannot
run on a target (missing data, say) becomes a study marked failed with its
reason, and the bench goes on. The same command started twice at once
shares the work: each cell is run by one process (`lgt.leases`), and each
process ends with the whole bench.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from agents import EndpointDown, LLMClient, LLMSettings, make_client
from lgt import leases, methods
from lgt.baselines import BaselineRequest, run_baseline
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.options import AGENTS, OPTIONS, AgentsOptions, check_fields
from lgt.outputs import CannotWrite, check_folder, check_storage, file_writes
from lgt.reporting import describe_machine, write_bench_report
from lgt.reporting.text import one_line
from lgt.reporting.writing import write_whole
from lgt.runs import (
    RunSpec,
    bench_study_name,
    check_csv_options,
    check_models_and_metric,
    check_run_id,
    check_seed,
    check_trials,
)
from lgt.settings import default_storage_url, results_dir
from lgt.studies import RunExists, budget_spent, open_storage, redact_url
from lgt.tune import TuneRequest, llm_settings, run_tune
from tuning_targets import check_target_name, parse_models, takes_models, target_label
from tuning_targets.metrics import DEFAULT_METRIC

MAX_BENCH_ID = 100  # a cell's study name is the bench id, the target, the method and the seed, within 200
WAIT_POLL_SECONDS = 1.0  # how often a bench looks at the cells another process is running


@dataclass
class BenchRequest(AgentsOptions):
    """A bench: targets, methods, a budget and seeds; the run options every cell gets; the agents' options
    (`lgt.options.AgentsOptions`, as for `lgt tune`) for its agents methods."""

    targets: list[str]
    methods: list[str]
    trials: int
    seeds: list[int]
    storage: str | None = OPTIONS["storage"].field()
    data_dir: str | None = OPTIONS["data_dir"].field()
    target_column: str | None = OPTIONS["target_column"].field()
    bench_id: str | None = None
    epoch_budget: int | None = OPTIONS["epoch_budget"].field()
    csv_sep: str | None = OPTIONS["csv_sep"].field()  # for the csv: targets; default: detected per file
    csv_encoding: str | None = OPTIONS["csv_encoding"].field()
    models: str | None = OPTIONS["models"].field()  # model families of the tabular targets (default: all)
    metric: str | None = OPTIONS["metric"].field()  # what every run tunes (default: accuracy or MAE by task)

    def check(self) -> None:
        if not self.targets:
            raise UserError("--targets is empty; name at least one target")
        for target in self.targets:
            check_target_name(target)
        if not self.methods:
            raise UserError("--methods is empty; name at least one of: " + ", ".join(methods.names()))
        for method in self.methods:
            methods.get(method)
        if not self.seeds:
            raise UserError("--seeds is empty; give at least one seed, e.g. --seeds 1,2,3")
        for seed in self.seeds:
            check_seed(seed)
        check_trials(self.trials)
        check_fields(self)  # the epoch budget and the agents' options, as `lgt tune` checks them
        if self.adapt == "epoch" and self.epoch_budget is None:
            raise UserError("--adapt epoch compares methods on epochs: give --epoch-budget E as well")
        if self.bench_id is not None:
            check_run_id(self.bench_id)
            if len(self.bench_id) > MAX_BENCH_ID:
                raise UserError(f"--bench-id is {len(self.bench_id)} characters long; at most {MAX_BENCH_ID}, so "
                                f"the names of its runs fit")
        check_csv_options(self.csv_sep, self.csv_encoding, self.targets)
        check_models_and_metric(self.models, self.metric, self.targets)


def bench_id_for(request: BenchRequest) -> str:
    """Same bench, same id: what makes a re-run continue rather than start over.

    Everything that changes what is measured is in the id. A setting joins
    the key only when it is given (not its default), so the ids of benches
    that set none of the newer ones stay what they were.
    """
    parts: list[Any] = [sorted(request.targets), sorted(request.methods), request.trials, sorted(request.seeds),
                         request.optimize_every]
    if request.adapt != "trial" or request.epoch_budget is not None:  # older benches keep their ids
        parts += [request.adapt, request.epoch_budget]
    measured = {k: v for k, v in _measured(request).items() if v is not None}
    if measured:
        parts.append(measured)
    key = json.dumps(parts, sort_keys=True)
    return "bench-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def _measured(request: BenchRequest) -> dict[str, Any]:
    """The settings beyond targets, methods, budget and seeds that change what a cell measures."""
    models = None if request.models is None else ",".join(parse_models(request.models))
    return {"target_column": request.target_column, "csv_sep": request.csv_sep, "csv_encoding": request.csv_encoding,
            "llm_model": request.llm_model, "words": _given(request, "words"), "candidates": _given(request, "candidates"),
            "models": models, "metric": request.metric}


def _given(request: BenchRequest, name: str) -> Any:
    """An option's value, or None when it is the default (a bench that leaves it keeps its id)."""
    value = getattr(request, name)
    return None if value == OPTIONS[name].default else value


study_name = bench_study_name


@dataclass(frozen=True)
class Cell:
    """One run of the bench: a method on a target with a seed, and its study's name."""

    target: str
    method: str
    seed: int
    name: str

    def line(self) -> str:
        return f"[bench] {one_line(self.target)} / {self.method} / seed {self.seed}"


def cells_of(request: BenchRequest, bench_id: str) -> list[Cell]:
    return [Cell(t, m, s, study_name(bench_id, t, m, s)) for t in request.targets for s in request.seeds
            for m in request.methods]


def run_bench(request: BenchRequest, observer: RunObserver | None = None,
              client_factory: Callable[[LLMSettings], LLMClient] = make_client) -> dict[str, Any]:
    """Run what is missing of the bench, then write its report; returns where it is.

    Every check comes before anything is written: names, where the bench
    writes, and that cells already in the storage were run with these
    settings. Benches on the same id may run at once: each cell is driven
    by one process under its lease (`lgt.leases`); a cell another process
    is running is left to it, and once this process has done what it can,
    it waits for those cells (and takes over any whose process died), so
    both end with the whole bench and the same report.

    `client_factory` is handed to the LGT runs (tests fake the LLM's HTTP with it).
    """
    request.check()
    observer = observer or RunObserver()
    storage_url = request.storage or default_storage_url()
    bench_id = request.bench_id or bench_id_for(request)
    cells = cells_of(request, bench_id)
    for cell in cells:
        check_run_id(cell.name)
    folder = results_dir() / "bench" / bench_id
    check_storage(storage_url)
    check_folder(folder, "bench folder")
    storage = open_storage(storage_url)
    for cell in cells:
        _check_same_settings(storage, request, bench_id, cell)
    machine = describe_machine()
    with file_writes(storage_url, folder):
        folder.mkdir(parents=True, exist_ok=True)
        write_whole(folder / "bench.json", json.dumps({
            "bench_id": bench_id, "study_names": [c.name for c in cells], "storage": redact_url(storage_url),
            "machine": machine, "targets": request.targets, "methods": request.methods, "trials": request.trials,
            "seeds": request.seeds, "adapt": request.adapt, "epoch_budget": request.epoch_budget,
            **{k: v for k, v in _measured(request).items() if v is not None},
        }, indent=2) + "\n")
    with _llm_once(request, observer) as llm:
        busy = []
        for cell in cells:
            observer.on_message(cell.line())
            if _run_one(request, storage, storage_url, cell, bench_id, llm, folder, observer, client_factory) == BUSY:
                busy.append(cell)
        _wait_for(busy, request, storage, storage_url, bench_id, llm, folder, observer, client_factory)
    with file_writes(storage_url, folder):
        report = write_bench_report(storage_url, [c.name for c in cells], folder, title=f"lgt bench {bench_id}",
                                    machine=machine, cells={c.name: {"target": c.target, "method": c.method,
                                                                     "seed": c.seed, "trials": request.trials}
                                                            for c in cells})
    return {"bench_id": bench_id, "bench_dir": str(folder), "report": str(report), "storage": redact_url(storage_url)}


def _check_same_settings(storage: optuna.storages.BaseStorage, request: BenchRequest, bench_id: str,
                         cell: Cell) -> None:
    """A cell already in the storage was run as this command would run it; else one line, before anything runs.

    The bench id holds every measured setting, so a difference means the
    same `--bench-id` was given to a different command; continuing would
    mix two measurements under one name.
    """
    study = _existing(storage, cell.name)
    if study is None or study.user_attrs.get("status") == "failed":
        return
    spec = RunSpec.from_study(study)
    method = methods.get(cell.method)
    wanted: dict[str, Any] = {"--trials": (spec.trials, method.budget(request.trials)),
                              "--target-column": (spec.target_column, request.target_column),
                              "--csv-sep": (spec.csv_sep, request.csv_sep),
                              "--csv-encoding": (spec.csv_encoding, request.csv_encoding),
                              "--epoch-budget": (spec.epoch_budget, request.epoch_budget)}
    default_metric = {str(task): name for task, name in DEFAULT_METRIC.items()}.get(
        str(study.user_attrs.get("target_task")))
    if request.metric is not None or default_metric is not None:  # the metric in effect, given or by default
        wanted["--metric"] = (spec.metric, request.metric or default_metric)
    if takes_models(cell.target):
        given = RunSpec(run_id=cell.name, target=cell.target, method=cell.method, seed=cell.seed, trials=1,
                        models=request.models).models
        if request.models is None and "models" not in study.user_attrs and spec.models != given:
            raise UserError(f"bench {bench_id} ran {one_line(target_label(cell.target))} with the MLP alone (run "
                            f"{cell.name}, from before model families; --models now defaults to all): continue it "
                            f"with --bench-id {bench_id} --models mlp, or give another --bench-id")
        wanted["--models"] = (spec.models, given)
    if method.is_agents:
        attrs = study.user_attrs
        wanted |= {OPTIONS[name].flag: (attrs.get(name, getattr(request, name)), getattr(request, name))
                   for name in ("adapt", "optimize_every", "candidates")}
    for flag, (stored, given) in wanted.items():
        if stored != given:
            raise UserError(f"bench {bench_id} was run with {flag} {_shown(stored)} (run {cell.name}), not "
                            f"{_shown(given)}: give the same options to continue it, or another --bench-id")


def _shown(value: Any) -> str:
    return "(not given)" if value is None else repr(value) if isinstance(value, str) else str(value)


@contextlib.contextmanager
def _llm_once(request: BenchRequest, observer: RunObserver) -> Iterator[LLMSettings | None]:
    """One LLM endpoint for every LGT run: the embedded model starts once, not per run."""
    if not any(methods.get(m).is_agents for m in request.methods):
        yield None
        return
    with llm_settings(request.llm_model, request.llm_base_url, observer) as settings:
        yield settings


DONE, BUSY = "done", "busy"
# The run options a bench hands every cell as it was given them.
_PASSED = ("data_dir", "target_column", "epoch_budget", "csv_sep", "csv_encoding", "models", "metric")


def _state(storage_url: str, storage: optuna.storages.BaseStorage, name: str) -> tuple[str, optuna.Study | None]:
    """What a cell's study says now: absent, failed, finished, busy (a live process drives it) or resumable.

    Read under the lease mutex, so a study another process is creating is
    seen whole (with its spec and its lease) or not at all.
    """
    with leases.mutex(storage_url):
        study = _existing(storage, name)
        if study is None:
            return "absent", None
        if study.user_attrs.get("status") == "failed":
            return "failed", study
        if leases.live_holder(study.user_attrs) is not None:
            return "busy", study
        if budget_spent(study, RunSpec.from_study(study)):
            return "finished", study
        return "resumable", study


def _run_one(request: BenchRequest, storage: optuna.storages.BaseStorage, storage_url: str, cell: Cell,
             bench_id: str, llm: LLMSettings | None, folder: Path, observer: RunObserver,
             client_factory: Callable[[LLMSettings], LLMClient]) -> str:
    """Run (or continue) one cell unless it is finished or another process runs it; returns DONE or BUSY."""
    state, study = _state(storage_url, storage, cell.name)
    if state == "finished":
        observer.on_message("  already finished; skipped")
        return DONE
    if state == "busy":
        assert study is not None
        holder = leases.live_holder(study.user_attrs)
        observer.on_message(f"  being run by another process ({holder[0] if holder else '?'}); this bench reads "
                            f"its result when it ends")
        return BUSY
    if state == "failed":
        cleared = _clear_failed(storage_url, storage, cell.name)
        if cleared != "cleared":
            return BUSY if cleared == "busy" else DONE  # another process's run now, or a failed run with trials
    resume = cell.name if state == "resumable" else None
    out_dir = folder / "runs" / cell.name.removeprefix(bench_id + ".")
    common: dict[str, Any] = {"target": cell.target, "trials": request.trials, "seed": cell.seed,
                              "storage": storage_url, "resume": resume, "run_id": cell.name, "out_dir": out_dir,
                              **{name: getattr(request, name) for name in _PASSED}}
    try:
        if methods.get(cell.method).is_agents:
            run_tune(TuneRequest(method=cell.method, **common, **{name: getattr(request, name) for name in AGENTS}),
                     observer, client_factory=client_factory, llm=llm)
        else:
            run_baseline(BaselineRequest(method=cell.method, **common), observer)
    except (leases.RunBusy, RunExists):  # another process took the cell an instant before this one
        observer.on_message("  being run by another process; this bench reads its result when it ends")
        return BUSY
    except (EndpointDown, CannotWrite):
        raise  # the LLM is down, or nothing can be written: stop; the same command continues the bench
    except UserError as exc:
        observer.on_message(f"  failed: {one_line(str(exc))}")
        _mark_failed(storage_url, storage, cell, bench_id, request.trials, str(exc))
        return DONE
    optuna.load_study(study_name=cell.name, storage=storage).set_user_attr("bench_id", bench_id)
    return DONE


def _wait_for(cells: list[Cell], request: BenchRequest, storage: optuna.storages.BaseStorage, storage_url: str,
              bench_id: str, llm: LLMSettings | None, folder: Path, observer: RunObserver,
              client_factory: Callable[[LLMSettings], LLMClient]) -> None:
    """Wait for the cells other processes run; a cell whose process died is continued here."""
    if cells:
        observer.on_message(f"[bench] waiting for {len(cells)} run(s) that another process is running: "
                            + ", ".join(c.name for c in cells))
    pending = cells
    while pending:
        time.sleep(WAIT_POLL_SECONDS)
        still = []
        for cell in pending:
            if _state(storage_url, storage, cell.name)[0] == "busy":
                still.append(cell)
                continue
            observer.on_message(cell.line())
            if _run_one(request, storage, storage_url, cell, bench_id, llm, folder, observer,
                        client_factory) == BUSY:
                still.append(cell)
        pending = still


def _existing(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _clear_failed(storage_url: str, storage: optuna.storages.BaseStorage, name: str) -> str:
    """Delete a cell's failed placeholder so the cell is tried again: "cleared", "busy" or "kept".

    Only a placeholder (status failed, no trial, no live lease) is deleted,
    and under the lease mutex: a study another process runs ("busy": look
    again later) or a failed study holding trials ("kept") is never touched.
    """
    with leases.mutex(storage_url):
        study = _existing(storage, name)
        if study is None:
            return "cleared"
        attrs = study.user_attrs
        if attrs.get("status") != "failed" or leases.live_holder(attrs) is not None:
            return "busy"
        if study.trials:
            return "kept"
        optuna.delete_study(study_name=name, storage=storage)
        return "cleared"


def _mark_failed(storage_url: str, storage: optuna.storages.BaseStorage, cell: Cell, bench_id: str, trials: int,
                 reason: str) -> None:
    """A placeholder study saying why the cell failed, for the report; none when a study of that name exists.

    An existing study is another process's live run, or this cell's own
    run, which keeps what it stored and is continued by the next bench: it
    is never deleted or overwritten.
    """
    with leases.mutex(storage_url):
        if _existing(storage, cell.name) is not None:
            return
        study = optuna.create_study(study_name=cell.name, storage=storage)
        for key, value in {"run_id": cell.name, "target": cell.target, "method": cell.method, "seed": cell.seed,
                           "trials": trials, "bench_id": bench_id, "status": "failed",
                           "fail_reason": reason}.items():
            study.set_user_attr(key, value)
