"""Everything a person reads about a run, rendered from the storage by one layer.

The change log, report.md, the tables, the figures, the in-run schedule, the
terminal lines that narrate a run, and trials.csv / summary.json all come
from here, and all from what the Optuna storage holds. Graph nodes and
workers only record; `lgt report` remakes any of these files later.

Modules: `store` (runs read back), `summary` (one run in numbers), `tables`
(the bench's tables and reading), `figures` + `plots` (PNGs), `changelog`,
`schedule` (in-run schedule in words), `lines` (terminal narration),
`pages` (report.md), `html` (report.html: report.md and the change log as
one offline page), `notes` (optuna-dashboard's study and trial notes),
`artifacts` (the plots as Optuna artifacts, for the dashboard), `publish`
(what a run refreshes after every write), `files` (which file is which,
and `rebuild`), `writing` (files written whole, under a temporary name).
"""

from lgt.reporting.files import (
    REPORT,
    Rebuilt,
    rebuild,
    rebuild_folder,
    write_bench_report,
    write_changelog,
    write_run_files,
    write_study_report,
)
from lgt.reporting.machine import describe_machine
from lgt.reporting.store import Run, load_run, load_runs
from lgt.reporting.summary import BENCH_COLUMNS, bench_rows, summarize, trial_rows

__all__ = ["BENCH_COLUMNS", "REPORT", "Rebuilt", "Run", "bench_rows", "describe_machine", "load_run", "load_runs",
           "rebuild", "rebuild_folder", "summarize", "trial_rows", "write_bench_report", "write_changelog",
           "write_run_files", "write_study_report"]
