"""Which files each view is, where they go, and `lgt report`'s rebuild of them.

A run folder holds trials.csv, summary.json, report.md with its figures
and, for an LGT run, changelog.md with its schedule plots; report.html is
report.md (and the change log) as one self-contained page. A bench folder
holds bench.json, summary.csv, table.md, report.md, report.html and its
figures. Every one is rendered from the storage, so `rebuild` remakes any
of them. Writing a run's files also refreshes what optuna-dashboard shows
of it: the notes (`notes`) and the plots as artifacts (`artifacts`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from lgt import methods
from lgt.errors import UserError
from lgt.leases import live_holder
from lgt.reporting import changelog, html
from lgt.reporting.artifacts import attach_run_figures
from lgt.reporting.figures import bench_figures, run_figures
from lgt.reporting.notes import write_notes
from lgt.reporting.pages import bench_page, machine_line, run_page
from lgt.reporting.plain import is_lgt_run, write_plain_report
from lgt.reporting.store import NOT_STARTED, load_run, load_runs, open_existing
from lgt.reporting.summary import Row, bench_rows, write_summary_csv, write_summary_json, write_trials_csv
from lgt.reporting.tables import bench_tables
from lgt.reporting.writing import write_whole
from lgt.runs import bench_study_name
from lgt.settings import default_storage_url
from lgt.studies import redact_url, resume_command

REPORT = "report.md"


def write_changelog(storage_url: str, study_name: str, folder: Path) -> Path:
    """changelog.md of an LGT run, as its study holds it now."""
    return changelog.write(load_run(storage_url, study_name), folder)


def write_run_files(storage_url: str, study_name: str, folder: Path) -> dict[str, Any]:
    """Every file of one `lgt tune` or `lgt baseline` run, and its notes and plots in the storage.

    Returns the run's summary with the paths.
    """
    run = load_run(storage_url, study_name)  # a missing storage or study is a UserError naming it
    study = optuna.load_study(study_name=study_name, storage=open_existing(storage_url))
    folder.mkdir(parents=True, exist_ok=True)
    write_trials_csv(run, folder / "trials.csv")
    summary = write_summary_json(run, redact_url(storage_url), folder / "summary.json")
    paths: dict[str, Any] = {"run_dir": str(folder)}
    log = None
    if methods.is_agents(run.method):
        log = changelog.write(run, folder)
        paths["changelog"] = str(log)
    figures = run_figures(run, folder) if run.best is not None else []
    report = folder / REPORT
    page = run_page(run, summary, figures, folder)
    write_whole(report, page)
    page_html = html.write(folder / html.HTML_REPORT,
                           html.run_html(run, page, folder, log.read_text() if log is not None else None))
    write_notes(study, run)
    attach_run_figures(study, storage_url, folder, figures)
    return summary | paths | {"report": str(report), "report_html": str(page_html)}


def write_bench_report(storage_url: str, study_names: list[str], out_dir: Path, *, title: str,
                       machine: str | None = None, cells: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Write summary.csv, table.md, the figures, report.md and report.html into `out_dir`; returns report.md's path.

    Args:
        storage_url: the Optuna storage holding the studies (its password never reaches the files).
        study_names: the runs of the benchmark, one study each.
        out_dir: where the files go (created if needed).
        title: the report's heading.
        machine: what the runs ran on; by default the study attr `machine`, else this machine.
        cells: each run's target, method and seed, so a run not started yet is shown as such.
    """
    return _bench_files(storage_url, study_names, out_dir, title=title, machine=machine, cells=cells)[0]


def _bench_files(storage_url: str, study_names: list[str], out_dir: Path, *, title: str, machine: str | None,
                 cells: Mapping[str, Mapping[str, Any]] | None) -> tuple[Path, list[Row]]:
    runs = load_runs(storage_url, study_names, cells)
    rows = bench_rows(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_summary_csv(rows, out_dir / "summary.csv")
    tables = bench_tables(rows)
    write_whole(out_dir / "table.md", tables)
    figures = bench_figures(runs, rows, out_dir)
    path = out_dir / REPORT
    page = bench_page(runs, rows, tables, figures, title=title, machine=machine_line(runs, machine),
                      storage_url=storage_url)
    write_whole(path, page)
    html.write(out_dir / html.HTML_REPORT, html.bench_html(page, out_dir, title=title))
    return path, rows


@dataclass(frozen=True)
class Rebuilt:
    """What `lgt report` wrote, and what is unfinished about it in one line (None when nothing is)."""

    report: Path
    unfinished: str | None = None


def write_study_report(storage_url: str, study_name: str, folder: Path) -> dict[str, Any]:
    """`lgt report --study NAME`: a run's files for a study lgt ran or sampled, tables and plots for any other."""
    load_runs(storage_url, [study_name])  # a missing storage or study is one line naming it
    study = optuna.load_study(study_name=study_name, storage=open_existing(storage_url))
    if is_lgt_run(study):
        return write_run_files(storage_url, study_name, folder)
    return write_plain_report(study, folder)


def rebuild(path: Path, storage_url: str | None = None) -> Path:
    """Remake the files of a run folder or a bench folder from the storage; returns report.md's path."""
    return rebuild_folder(path, storage_url).report


def rebuild_folder(path: Path, storage_url: str | None = None) -> Rebuilt:
    """Remake the files of a run folder or a bench folder from the storage, and say what is unfinished.

    A bench folder holds bench.json (`bench_id`, `study_names`, the redacted
    storage); a run folder holds summary.json (`study_name`) once its run
    ended. A run that was killed, or is still running, has no summary.json
    yet: its folder's name is its run id (`results/<run-id>/`, or a bench's
    `runs/<target>.<method>.s<seed>/`), and its files are written from what
    the storage holds, saying it is incomplete. The storage is
    `storage_url`, else the default one, since a recorded URL has lost its
    password.
    """
    url = storage_url or default_storage_url()
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is not a folder; pass a run folder (results/<run-id>/) or a bench folder "
                        f"(results/bench/<bench-id>/)")
    if (path / "bench.json").is_file():
        return _rebuild_bench(path, url)
    if (path / "summary.json").is_file():
        name = _read_json(path / "summary.json").get("study_name")
        if not name:
            raise UserError(f"{path / 'summary.json'} names no study_name")
    else:
        name = _run_named_by(path, url)
    summary = write_run_files(url, str(name), path)
    return Rebuilt(Path(summary["report"]), _run_unfinished(summary, load_run(url, str(name)).attrs, url))


def _run_named_by(path: Path, url: str) -> str:
    """The run a folder without summary.json belongs to: its name, when the storage holds a run of that name."""
    names = [path.name]
    bench = path.parent.parent / "bench.json"
    if path.parent.name == "runs" and bench.is_file():
        names.insert(0, f"{_read_json(bench).get('bench_id')}.{path.name}")
    held = set(optuna.get_all_study_names(open_existing(url)))
    found = next((n for n in names if n in held), None)
    if found is not None:
        return found
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; pass a run folder (results/<run-id>/) or a bench folder "
                        f"(results/bench/<bench-id>/)")
    raise UserError(f"{path} is neither a run folder (with summary.json) nor a bench folder (with bench.json), "
                    f"and storage {redact_url(url)} holds no run named {path.name!r}")


def _run_unfinished(summary: Mapping[str, Any], attrs: Mapping[str, Any], url: str) -> str | None:
    """One line on a run that has not spent its budget: still running (a live lease), or stopped."""
    if summary.get("status") != "incomplete":
        return None
    name = str(summary["study_name"])
    stored = f"{summary['trials_run']} of {summary['budget']} trials"
    holder = live_holder(attrs)
    if holder is not None:
        return f"run {name} is still running ({holder[0]}): this report shows the {stored} stored so far"
    how = ("the same `lgt bench` command continues it" if attrs.get("bench_id")
           else f"`{resume_command(name, methods.is_agents(str(attrs.get('method'))), url)}` continues it")
    return f"run {name} is incomplete ({stored} stored; it was stopped before its budget was spent): {how}"


def _rebuild_bench(path: Path, url: str) -> Rebuilt:
    bench = _read_json(path / "bench.json")
    names = bench.get("study_names")
    if not isinstance(names, list) or not names:
        raise UserError(f"{path / 'bench.json'} lists no study_names")
    title = str(bench.get("title") or f"lgt bench {bench.get('bench_id') or path.name}")
    machine = bench.get("machine")
    report, rows = _bench_files(url, [str(n) for n in names], path, title=title,
                                machine=str(machine) if machine else None, cells=_bench_cells(bench))
    waiting = sum(r["status"] == NOT_STARTED for r in rows)
    incomplete = sum(r["status"] == "incomplete" for r in rows)
    if not waiting and not incomplete:
        return Rebuilt(report)
    parts = ([f"{waiting} not started yet"] if waiting else []) + ([f"{incomplete} incomplete"] if incomplete else [])
    return Rebuilt(report, f"bench {bench.get('bench_id') or path.name} is not finished ({' and '.join(parts)} of "
                           f"{len(rows)} runs): the same `lgt bench` command continues it, or is still running it")


def _bench_cells(bench: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each run of a bench by study name, from bench.json's targets, methods and seeds."""
    bench_id = str(bench.get("bench_id") or "")
    try:
        return {bench_study_name(bench_id, str(t), str(m), int(s)): {"target": t, "method": m, "seed": int(s),
                                                                     "trials": bench.get("trials")}
                for t in bench.get("targets") or [] for m in bench.get("methods") or []
                for s in bench.get("seeds") or []}
    except (TypeError, ValueError):
        return {}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} does not read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} does not hold a JSON object")
    return data
