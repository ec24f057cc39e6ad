"""The `lgt` command: parse, call one function of the app shell, render.

A UserError becomes one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from lgt import methods
from lgt.errors import UserError
from lgt.options import AGENTS, TUNE_TRIALS, add_options, option

EXIT_USER_ERROR = 2
BENCH_DEFAULT = ("lgt", "tpe", "gp", "grid", "random", "default")
# The run options (`lgt.options`) each command takes, besides its own flags.
CSV, MODEL = ("csv_sep", "csv_encoding"), ("models", "metric")
RUN = ("trials", "seed", "storage", "data_dir", "target_column", "task", "epoch_budget", *CSV, *MODEL)
TUNE_ONLY = ("proposer", "on_llm_failure", "adapt_check", "parallel")


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus the error; users get the one line that matters."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"lgt: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lgt", description="Language-Guided Tuning: LLM agents tune a model and explain "
                                             "each change; classic Optuna HPO runs beside it on the same budget.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("targets", help="list the targets, their data and search space")

    base = commands.add_parser("baseline", help="tune a target with a classic Optuna method")
    _target_options(base, required=False)  # required unless --resume names the run: its study knows them
    base.add_argument("--method", help=methods.help_text(agents=False) + " (required unless --resume RUN_ID)")
    option("trials").add_to(base, default=15, help="trial budget (default 15; 'default' runs 1)")
    add_options(base, "seed", "storage")
    base.add_argument("--config", type=Path, help="JSON file overriding the shared first (default) config")
    base.add_argument("--resume", nargs="?", const="", metavar="RUN_ID",
                      help="continue a run without repeating finished trials; with RUN_ID nothing else is needed "
                           "(bare: the latest run of --target, --method and --seed)")
    option("epoch_budget").add_to(base, help="also stop once E epochs were trained over all trials (compare with "
                                             "lgt tune --adapt epoch)")
    base.add_argument("--run-id", help="name the study (default target-method-seed-time); workers join it by name")
    base.add_argument("--create-only", action="store_true",
                      help="create the study and queue the default config, then exit: `lgt worker`s run it")

    tune = commands.add_parser("tune", help="tune a target with the LGT agents (Advisor, Evaluator, Optimizer)")
    _target_options(tune, required=False)
    option("trials").add_to(tune, default=TUNE_TRIALS,
                            help=f"trial budget, the default config included (default {TUNE_TRIALS})")
    option("seed").add_to(tune, help="seed for training and fallbacks (default 0)")
    add_options(tune, "storage", *AGENTS, *TUNE_ONLY)
    tune.add_argument("--approve", action="store_true", help="pause before each training to accept, edit or reject")
    tune.add_argument("--resume", metavar="RUN_ID", help="continue a run after a crash, kill or Ctrl-C")
    tune.add_argument("--run-id", help="name the study (default target-lgt-seed-time)")
    option("epoch_budget").add_to(tune, help="stop once E epochs were trained over all trials, A/B branches included")

    worker = commands.add_parser("worker", help="run trials of a shared study until its budget is spent")
    option("storage").add_to(worker, required=True, help="the study's storage URL, e.g. postgresql://user@host/db")
    worker.add_argument("--study", required=True, help="the study (run id) to work on")
    option("data_dir").add_to(worker, default=None,
                              help="where this machine keeps mnist/cifar10 (default: as the study says)")

    bench = commands.add_parser("bench", help="LGT against Optuna TPE, GP, grid, random and no tuning, equal budgets")
    bench.add_argument("--targets", required=True, type=_names, help="comma-separated targets, e.g. digits,iris,wine")
    bench.add_argument("--methods", type=_names, default=list(BENCH_DEFAULT),
                       help=f"comma-separated, from {','.join(methods.names())} (default: {','.join(BENCH_DEFAULT)})")
    option("trials").add_to(bench, default=15, help="trial budget per run (default 15)")
    bench.add_argument("--seeds", type=_seeds, default=[1, 2, 3], help="comma-separated seeds (default 1,2,3)")
    add_options(bench, "storage", "data_dir", "target_column", *CSV, *MODEL, *AGENTS)
    option("epoch_budget").add_to(bench, help="every run also stops at E epochs trained, so methods that adapt inside "
                                              "a run and pruning baselines (tpe-median, tpe-hyperband) compare on "
                                              "equal epochs; --adapt epoch needs it")
    bench.add_argument("--bench-id", help="name of the bench (default: derived from everything it measures, so the "
                                          "same command continues the same bench)")

    report = commands.add_parser("report", help="rebuild report.md, tables and plots from the storage")
    report.add_argument("path", type=Path, nargs="?",
                        help="a run dir (results/<run-id>) or a bench dir (results/bench/<id>); or give --study")
    add_options(report, "storage")
    report.add_argument("--study", help="a study by name instead of a folder: one LGTSampler sampled gets its change "
                                        "log, report.md and report.html; any other Optuna study, tables and plots")
    report.add_argument("--out", type=Path, help="where --study's files go (default results/<study>/)")

    dashboard = commands.add_parser("dashboard", help="optuna-dashboard on the run storage, with lgt's notes and plots")
    add_options(dashboard, "storage")
    dashboard.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")

    llm = commands.add_parser("llm", help="the embedded local LLM")
    llm_commands = llm.add_subparsers(dest="llm_command", required=True, parser_class=_Parser)
    llm_commands.add_parser("serve", help="serve the embedded model on 127.0.0.1 until Ctrl-C")
    return parser


def _given(args: argparse.Namespace, names: Sequence[str], but: Sequence[str] = ()) -> dict[str, Any]:
    """The values of these options as parsed, by field name."""
    return {name: getattr(args, name) for name in names if name not in but}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be whole numbers separated by commas, got {text!r}") from None


def _target_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--target", required=required, help="digits | mnist | cifar10 | iris | wine | breast_cancer "
                                                        "| diabetes | csv:PATH | synthetic:SECONDS")
    add_options(parser, "data_dir", "target_column", "task", *CSV, *MODEL)


def cmd_targets(args: argparse.Namespace) -> None:
    from rich.table import Table

    from lgt.console import out
    from tuning_targets import MODEL_FAMILIES, TARGET_NAMES, make_target, takes_models
    from tuning_targets.metrics import metric_names

    for name in TARGET_NAMES:
        if name == "csv:PATH":
            out.print("\n[bold]csv:PATH[/] - your CSV with --target-column; task inferred (or --task); "
                      "search space as for the tabular targets above.")
            continue
        if name == "synthetic:SECONDS":
            out.print("\n[bold]synthetic:SECONDS[/] - no data: each trial sleeps SECONDS (default 0.5) and scores "
                      "a smooth function of x, y and shape; for scaling and worker tests.")
            continue
        target = make_target(name)
        out.print(f"\n[bold]{name}[/] - {target.description}\n  task {target.task}, metric {target.metric} "
                  f"({target.direction}; --metric {' | '.join(metric_names(target.task))}); "
                  f"data: {target.data_summary()}")
        if takes_models(name):
            out.print(f"  model families (--models): {', '.join(MODEL_FAMILIES)}; each family's knobs apply only "
                      f"when `model` names it, the feature knobs to every family")
        table = Table(show_edge=False, pad_edge=False)
        for column in ("knob", "dimension", "range", "default", "description"):
            table.add_column(column, overflow="fold")
        for knob in target.space.describe():
            default = target.default_config.get(knob["name"], knob.get("default"))  # an inactive knob's own
            table.add_row(knob["name"], knob["dimension"], knob["range"], json.dumps(default), knob["description"])
        out.print(table)


def cmd_baseline(args: argparse.Namespace) -> None:
    from lgt.baselines import BaselineRequest, run_baseline

    request = BaselineRequest(target=args.target or "", method=args.method or "", config=_read_config(args.config),
                              resume=args.resume, run_id=args.run_id, create_only=args.create_only,
                              **_given(args, RUN))
    if request.create_only:
        from lgt.console import out

        summary = run_baseline(request)
        out.print(f"study {summary['study_name']!r} created in {_shown(summary['storage'])}; start workers with:\n"
                  f"  lgt worker --storage URL --study {summary['study_name']}")
        return
    _run_and_render(lambda observer: run_baseline(request, observer), args.storage)


def _shown(url: str) -> str:
    from lgt.studies import redact_url

    return redact_url(url)


def cmd_worker(args: argparse.Namespace) -> None:
    from lgt.console import ProgressObserver, out
    from lgt.worker import WorkerRequest, run_worker

    summary = run_worker(WorkerRequest(storage=args.storage, study=args.study, data_dir=args.data_dir),
                         ProgressObserver())
    out.print(f"worker done: ran {summary['trials_run_here']} trial(s); study {summary['study_name']!r} holds "
              f"{summary['trials_done']}/{summary['budget']}")


def cmd_tune(args: argparse.Namespace) -> None:
    from lgt.console import out
    from lgt.tune import TuneRequest, run_tune

    if not args.target and not args.resume:
        raise UserError("lgt tune needs --target (or --resume RUN_ID)")
    request = TuneRequest(target=args.target or "", method=methods.by_proposer(args.proposer).name,
                          approve=args.approve, resume=args.resume, run_id=args.run_id,
                          **_given(args, (*RUN, *AGENTS, *TUNE_ONLY), but=("proposer",)))
    summary = _run_and_render(lambda observer: run_tune(request, observer, approver=ask_person), args.storage)
    out.print(f"change log: {summary['changelog']}")


def ask_person(proposal: dict[str, Any]) -> dict[str, Any]:
    """The --approve prompt: accept, edit values, or reject with a note for the Advisor."""
    from lgt.console import err

    err.print(f"\n[bold]Round {proposal['round']}[/] proposal ({proposal['source']}):")
    for knob, value in (proposal["changes"] or {}).items():
        reason = (proposal["reasons"] or {}).get(knob, "")
        err.print(f"  {knob} -> {json.dumps(value)}  {reason}")
    if not proposal["changes"]:
        err.print("  (no change from the starting config)")
    while True:
        try:
            answer = input("[a]ccept, [e]dit knob=value ..., [r]eject <note>: ").strip()
        except EOFError:
            raise UserError("--approve needs someone at the terminal to answer; the run is saved, "
                            "continue it with --resume") from None
        word, _, rest = answer.partition(" ")
        if word in ("", "a", "accept"):
            return {"action": "accept"}
        if word in ("r", "reject"):
            return {"action": "reject", "note": rest.strip()}
        if word in ("e", "edit") and "=" in rest:
            values = dict(item.split("=", 1) for item in rest.split() if "=" in item)
            return {"action": "edit", "values": {k: _parse_value(v) for k, v in values.items()}}
        err.print("please answer a, e knob=value ..., or r note")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cmd_bench(args: argparse.Namespace) -> None:
    from lgt.bench import BenchRequest, run_bench
    from lgt.console import ProgressObserver, out

    request = BenchRequest(targets=args.targets, methods=args.methods, seeds=args.seeds, bench_id=args.bench_id,
                           **_given(args, ("trials", "storage", "data_dir", "target_column", "epoch_budget", *CSV,
                                           *MODEL, *AGENTS)))
    result = run_bench(request, ProgressObserver())
    table = Path(result["bench_dir"]) / "table.md"
    if table.exists():
        out.print(table.read_text(), markup=False)
    out.print(f"report: {result['report']}", markup=False)


def cmd_report(args: argparse.Namespace) -> None:
    from lgt.console import err, out
    from lgt.reporting import rebuild_folder
    from lgt.reporting.text import one_line

    if args.study is not None:
        from lgt.api import report

        out.print(f"report: {report(storage=args.storage, study=args.study, out_dir=args.out)}", markup=False)
        return
    if args.path is None:
        raise UserError("lgt report needs a run or bench folder, or --study NAME (with --storage)")
    rebuilt = rebuild_folder(args.path, args.storage)
    out.print(f"report: {rebuilt.report}", markup=False)
    if rebuilt.unfinished:
        err.print(f"note: {one_line(rebuilt.unfinished)}", markup=False)


def cmd_dashboard(args: argparse.Namespace) -> None:
    from lgt.dashboard import serve

    serve(args.storage, args.port)


def cmd_llm(args: argparse.Namespace) -> None:
    from agents.embedded import serve_forever

    serve_forever()


def _run_and_render(run: Any, storage: str | None) -> dict[str, Any]:
    """Run with progress bars, then print the trials and the best one."""
    from lgt.console import ProgressObserver, out, summary_table, trials_table
    from lgt.reporting import load_run, trial_rows
    from lgt.reporting.text import short as fmt
    from lgt.settings import default_storage_url
    from tuning_targets import config_diff

    observer = ProgressObserver()
    summary: dict[str, Any] = run(observer)
    run_record = load_run(storage or default_storage_url(), summary["study_name"])
    default = run_record.attrs.get("default_config", {})
    rows = trial_rows(run_record)
    for row in rows:
        diff = config_diff(default, {k: row[k] for k in default if k in row})
        row["changes"] = ", ".join(f"{k}={fmt(v[1], 3)}" for k, v in diff.items())
    out.print(trials_table(rows, summary["metric"], summary["best_trial"]))
    out.print(summary_table(summary))
    out.print(f"results: {summary['run_dir']}/ (report.md, trials.csv, summary.json); "
              f"study {summary['study_name']!r} in {summary['storage']}")
    return summary


def _read_config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"config file {path} is a folder; pass a JSON file of knob: value") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as exc:
        raise UserError(f"config file {path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:  # not JSON, or a number too long for Python to read
        raise UserError(f"config file {path} is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a JSON object of knob: value")
    return data


COMMANDS = {"targets": cmd_targets, "baseline": cmd_baseline, "tune": cmd_tune, "bench": cmd_bench,
            "report": cmd_report, "llm": cmd_llm, "worker": cmd_worker, "dashboard": cmd_dashboard}


def main(argv: Sequence[str] | None = None) -> int:
    from lgt.logs import configure
    from lgt.reporting.text import one_line

    configure()
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"lgt: error: {one_line(exc)}", file=sys.stderr)  # a file name's newline stays in the one line
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("lgt: interrupted; finished trials are saved (continue with --resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        from lgt.outputs import cause, is_write_failure

        if not is_write_failure(exc):
            raise  # a bug: keep its traceback
        print(f"lgt: error: cannot go on: {one_line(cause(exc))}; what the storage holds is kept: once this is "
              f"fixed, `lgt report FOLDER` writes a run's files and --resume continues it", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
