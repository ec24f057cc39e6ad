"""`lgt bench`: every method on every target and seed, on equal budgets.

Each (target, method, seed) is one study in one storage, named
`<bench-id>.<target>.<method>.s<seed>`. The bench id is derived from what
is benchmarked, so running the same command again continues the same bench:
finished studies are skipped, unfinished ones resumed. A method that cannot
run on a target (missing data, say) becomes a study marked failed with its
reason, and the bench goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from agents import EndpointDown, LLMClient, LLMSettings, make_client
from lgt import methods
from lgt.baselines import BaselineRequest, run_baseline
from lgt.errors import UserError
from lgt.observer import RunObserver
from lgt.reporting import describe_machine, write_bench_report
from lgt.runs import RunSpec, check_csv_options, check_epoch_budget, check_run_id, check_seed, check_trials, slug
from lgt.settings import default_storage_url, results_dir
from lgt.studies import budget_spent, open_storage, redact_url
from lgt.tune import TuneRequest, llm_settings, run_tune
from tuning_targets import check_target_name, target_label


@dataclass
class BenchRequest:
    targets: list[str]
    methods: list[str]
    trials: int
    seeds: list[int]
    storage: str | None = None
    data_dir: str | None = None
    target_column: str | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    optimize_every: int = 3
    bench_id: str | None = None
    adapt: str = "trial"
    epoch_budget: int | None = None
    csv_sep: str | None = None  # for the csv: targets; default: detected per file
    csv_encoding: str | None = None

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
        check_epoch_budget(self.epoch_budget)
        if self.adapt == "epoch" and self.epoch_budget is None:
            raise UserError("--adapt epoch compares methods on epochs: give --epoch-budget E as well")
        if self.bench_id is not None:
            check_run_id(self.bench_id)
        check_csv_options(self.csv_sep, self.csv_encoding, self.targets)


def bench_id_for(request: BenchRequest) -> str:
    """Same bench, same id: what makes a re-run continue rather than start over."""
    parts: list[Any] = [sorted(request.targets), sorted(request.methods), request.trials, sorted(request.seeds),
                         request.optimize_every]
    if request.adapt != "trial" or request.epoch_budget is not None:  # older benches keep their ids
        parts += [request.adapt, request.epoch_budget]
    key = json.dumps(parts, sort_keys=True)
    return "bench-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def study_name(bench_id: str, target: str, method: str, seed: int) -> str:
    return f"{bench_id}.{slug(target_label(target))}.{method}.s{seed}"


def run_bench(request: BenchRequest, observer: RunObserver | None = None,
              client_factory: Callable[[LLMSettings], LLMClient] = make_client) -> dict[str, Any]:
    """Run what is missing of the bench, then write its report; returns where it is.

    `client_factory` is handed to the LGT runs (tests fake the LLM's HTTP with it).
    """
    request.check()
    observer = observer or RunObserver()
    storage_url = request.storage or default_storage_url()
    storage = open_storage(storage_url)
    bench_id = request.bench_id or bench_id_for(request)
    folder = results_dir() / "bench" / bench_id
    folder.mkdir(parents=True, exist_ok=True)
    names = [study_name(bench_id, t, m, s) for t in request.targets for s in request.seeds for m in request.methods]
    machine = describe_machine()
    (folder / "bench.json").write_text(json.dumps({
        "bench_id": bench_id, "study_names": names, "storage": redact_url(storage_url), "machine": machine,
        "targets": request.targets, "methods": request.methods, "trials": request.trials, "seeds": request.seeds,
        "adapt": request.adapt, "epoch_budget": request.epoch_budget,
    }, indent=2) + "\n")
    with _llm_once(request, observer) as llm:
        for target in request.targets:
            for seed in request.seeds:
                for method in request.methods:
                    name = study_name(bench_id, target, method, seed)
                    observer.on_message(f"[bench] {target} / {method} / seed {seed}")
                    _run_one(request, storage, storage_url, name, bench_id, target, method, seed, llm, folder,
                             observer, client_factory)
    report = write_bench_report(storage_url, names, folder, title=f"lgt bench {bench_id}", machine=machine)
    return {"bench_id": bench_id, "bench_dir": str(folder), "report": str(report), "storage": redact_url(storage_url)}


@contextlib.contextmanager
def _llm_once(request: BenchRequest, observer: RunObserver) -> Iterator[LLMSettings | None]:
    """One LLM endpoint for every LGT run: the embedded model starts once, not per run."""
    if not any(methods.get(m).is_agents for m in request.methods):
        yield None
        return
    with llm_settings(request.llm_model, request.llm_base_url, observer) as settings:
        yield settings


def _run_one(request: BenchRequest, storage: optuna.storages.BaseStorage, storage_url: str, name: str,
             bench_id: str, target: str, method: str, seed: int, llm: LLMSettings | None, folder: Path,
             observer: RunObserver, client_factory: Callable[[LLMSettings], LLMClient]) -> None:
    existing = _existing(storage, name)
    if existing is not None:
        if existing.user_attrs.get("status") == "failed":
            optuna.delete_study(study_name=name, storage=storage)  # a failed target is retried on re-run
            existing = None
        elif budget_spent(existing, RunSpec.from_study(existing)):
            observer.on_message("  already finished; skipped")
            return
    resume = name if existing is not None else None
    out_dir = folder / "runs" / name.removeprefix(bench_id + ".")
    try:
        if methods.get(method).is_agents:
            run_tune(TuneRequest(method=method, target=target, trials=request.trials, seed=seed, storage=storage_url,
                                 data_dir=request.data_dir, target_column=request.target_column,
                                 optimize_every=request.optimize_every, resume=resume, run_id=name,
                                 out_dir=out_dir, adapt=request.adapt, epoch_budget=request.epoch_budget,
                                 csv_sep=request.csv_sep, csv_encoding=request.csv_encoding),
                     observer, client_factory=client_factory, llm=llm)
        else:
            run_baseline(BaselineRequest(target=target, method=method, trials=request.trials, seed=seed,
                                         storage=storage_url, data_dir=request.data_dir,
                                         target_column=request.target_column, resume=resume, run_id=name,
                                         out_dir=out_dir, epoch_budget=request.epoch_budget,
                                         csv_sep=request.csv_sep, csv_encoding=request.csv_encoding), observer)
    except EndpointDown:
        raise  # the LLM is down: stop the bench; the same command continues this run once it is back
    except UserError as exc:
        observer.on_message(f"  failed: {exc}")
        _mark_failed(storage, name, bench_id, target, method, seed, request.trials, str(exc))
        return
    optuna.load_study(study_name=name, storage=storage).set_user_attr("bench_id", bench_id)


def _existing(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _mark_failed(storage: optuna.storages.BaseStorage, name: str, bench_id: str, target: str, method: str,
                 seed: int, trials: int, reason: str) -> None:
    if _existing(storage, name) is not None:
        optuna.delete_study(study_name=name, storage=storage)
    study = optuna.create_study(study_name=name, storage=storage)
    for key, value in {"run_id": name, "target": target, "method": method, "seed": seed, "trials": trials,
                       "bench_id": bench_id, "status": "failed", "fail_reason": reason}.items():
        study.set_user_attr(key, value)
