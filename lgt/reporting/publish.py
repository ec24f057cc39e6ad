"""What a run refreshes after every write to its study: the views people watch while it runs.

The change log (an LGT run's) is rewritten from the study, and optuna-dashboard's
notes on the study and its trials are brought up to date, so the dashboard
shows the same words as changelog.md while the run goes on. Only notes whose
text changed are written (see `notes`), so a long run does not rewrite every
trial's note after every round.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from lgt import methods
from lgt.reporting import changelog
from lgt.reporting.notes import write_notes
from lgt.reporting.store import read_run


def publish_run(study: optuna.Study, folder: Path) -> None:
    """Rewrite the run's live views from its study: changelog.md and the dashboard's notes."""
    run = read_run(study)
    if methods.is_agents(run.method):
        changelog.write(run, folder)
    write_notes(study, run)
