"""optuna-dashboard's notes on a run: the change log on the study, each round on its trial.

optuna-dashboard shows a markdown note beside a study and beside each trial.
lgt writes them from the same records the change log is rendered from
(`changelog.records`, `changelog.render_round`), so the dashboard and
changelog.md say the same words. An LGT run publishes after every write to
its study, so a note is written only when its text changed: a trial's note
is written about once over a run, not once per round (which would be
O(n^2) storage writes). A baseline run gets one short study note at the end.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna_dashboard import get_note, save_note

from lgt import methods
from lgt.optuna_private import live_trial, storage_of
from lgt.reporting import changelog
from lgt.reporting.store import Run
from lgt.reporting.summary import summarize
from lgt.reporting.text import fixed, md

FOOTER = ("_Written by lgt from the Optuna storage after every round (an edit here is replaced at the next "
          "one); the run folder holds the same text as changelog.md and report.html._")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<file>[\w.-]+\.png)\)$")

# Per storage object: the note text each (study, trial number or None) last had, as read or written by this
# process. A run's driver publishes many times; only the first publish reads the stored notes back.
# Module state on purpose: what it caches is a fact about the storage object (what this process last saw in it),
# so it is keyed by that object and dies with it (weak keys). The publishers (`lgt.reporting.publish`, called
# from recorder callbacks, the sampler and `lgt report`) each hold the storage, not a shared owner; an owner
# object passed to all of them would be this dictionary under another name, and one created per caller would
# read every note back again.
_known: weakref.WeakKeyDictionary[optuna.storages.BaseStorage, dict[tuple[str, int | None], str]] = (
    weakref.WeakKeyDictionary())


def study_note(run: Run) -> str:
    """The study's note: an LGT run's change log so far, or a baseline's outcome in a few lines."""
    if methods.is_agents(run.method):
        return _for_dashboard(changelog.render(run).rstrip("\n").splitlines()) + "\n\n" + FOOTER + "\n"
    return _baseline_note(run)


def trial_notes(run: Run) -> dict[int, str]:
    """Each LGT trial's note, by trial number: its round as the change log tells it.

    That is the proposal (knob, from, to, the reasons and the computed
    evidence), the Advisor's rationale, the result, the verdict and the
    textual gradient; a baseline's trials get none.
    """
    if not methods.is_agents(run.method):
        return {}
    metric = str(run.attrs.get("metric", "metric"))
    default: Mapping[str, Any] = run.attrs.get("default_config") or {}
    guidance, refused = changelog.guidance_versions(run), changelog.refused_guidance(run)
    rounds = changelog.records(run)
    return {record["number"]: _for_dashboard(changelog.render_round(
        record, metric, changelog.base_config(run, rounds, record, default), guidance, refused)) + "\n"
        for record in rounds}


def write_notes(study: optuna.Study, run: Run) -> int:
    """Bring the study's and its trials' notes up to date with `run` (read from `study`); returns notes written."""
    written = int(_save(study, None, study_note(run)))
    by_number = {t.number: t for t in run.trials}
    for number, body in trial_notes(run).items():
        written += _save(study, number, body, by_number[number])
    return written


def _save(study: optuna.Study, number: int | None, body: str, trial: FrozenTrial | None = None) -> bool:
    """Save a note unless it already holds `body`; the stored text is read once per process, then remembered."""
    known = _known.setdefault(storage_of(study), {})
    key = (study.study_name, number)

    def owner() -> optuna.Study | optuna.Trial:
        return study if trial is None else live_trial(study, trial)  # save_note refuses a FrozenTrial

    if key not in known:
        known[key] = get_note(owner())
    if known[key] == body:
        return False
    save_note(owner(), body)
    known[key] = body
    return True


def _for_dashboard(lines: list[str]) -> str:
    """Change-log markdown as a note: a plot the run folder holds is named, since the note cannot show it."""
    out = []
    for line in lines:
        image = _IMAGE.match(line)
        out.append(f"_{image['alt']}: {image['file']}, among the study's artifacts and in the run folder._"
                   if image else line)
    return "\n".join(out).rstrip("\n")


def _baseline_note(run: Run) -> str:
    row = summarize(run)
    decimals = 3 if abs(float(row["best_val_metric"] or 0)) < 10 else 2
    metric = run.metric
    lines = [f"# {md(run.attrs.get('run_id', run.name))}", "",
             (f"{methods.label(run.method)} on **{md(run.target)}**, seed {row['seed']}, budget {row['budget']} "
              f"trials: {row['trials_run']} run, {row['trials_failed']} failed. Status: {row['status']}."), "",
             "| | |", "| --- | --- |"]
    if run.best is not None:
        lines += [f"| best validation {metric} | {fixed(row['best_val_metric'], decimals)} (trial {run.best.number}) |",
                  f"| its test {metric} | {fixed(row['test_metric'], decimals)} |"]
    lines += [f"| default config's validation {metric} | {fixed(row['default_val_metric'], decimals)} |", "",
              (f"The configuration was chosen by validation {metric} only; its test {metric} is reported, never "
               f"used to choose. Plots: this study's artifacts."), "",
              "_Written by lgt from the Optuna storage when the run ended (`lgt report` writes it again)._"]
    return "\n".join(lines) + "\n"
