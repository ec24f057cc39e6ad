"""Runs read back from the Optuna storage: what every report, table and change log is rendered from.

Every figure lgt shows is read from the studies, never kept from the run
itself, so any view can be remade later, elsewhere, from any Optuna storage
(SQLite or PostgreSQL).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lgt.direction import Direction, direction_of, is_better
from lgt.errors import UserError
from lgt.reporting.text import metric_label
from lgt.studies import best_trial, counted_trials, open_storage, redact_url, sqlite_file, study_direction
from lgt.vocabulary import is_source
from tuning_targets import target_label


@dataclass(frozen=True)
class Run:
    """One study read back: its attrs and the trials that spent budget, in the order they ran."""

    name: str
    attrs: dict[str, Any]
    maximize: bool
    trials: list[FrozenTrial]
    best: FrozenTrial | None

    @property
    def target(self) -> str:
        """The target as people read it (a CSV by its file's stem)."""
        return target_label(str(self.attrs.get("target", "?")))

    @property
    def method(self) -> str:
        return str(self.attrs.get("method", "?"))

    @property
    def metric(self) -> str:
        return metric_label(self.attrs.get("metric"))

    @property
    def failed(self) -> bool:
        return self.attrs.get("status") == "failed"

    def values(self) -> list[float | None]:
        """Each trial's validation value; None for a failed trial."""
        return [float(t.value) if t.state == TrialState.COMPLETE and t.value is not None else None
                for t in self.trials]

    @property
    def direction(self) -> Direction:
        return direction_of(self.maximize)

    def best_so_far(self) -> list[float]:
        """The best validation value after each trial; NaN until the first trial completes."""
        out, best = [], math.nan
        for value in self.values():
            if value is not None and is_better(value, best, self.direction):
                best = value
            out.append(best)
        return out

    def default_index(self) -> int | None:
        return next((i for i, t in enumerate(self.trials) if is_source(t.user_attrs, "default")), None)


def open_existing(storage_url: str) -> optuna.storages.BaseStorage:
    """Open a storage for reading, without creating an empty SQLite file for a mistyped path."""
    file = sqlite_file(storage_url)
    if file is not None and not file.exists():
        raise UserError(f"storage {storage_url} does not exist; pass the storage the runs were written to "
                            f"(--storage)")
    return open_storage(storage_url)


def read_run(study: optuna.Study) -> Run:
    trials = [t for t in counted_trials(study) if not t.user_attrs.get("interrupted")]
    return Run(name=study.study_name, attrs=dict(study.user_attrs),
               maximize=study_direction(study) == "maximize", trials=trials,
               best=best_trial(study))


NOT_STARTED = "not started"


def load_runs(storage_url: str, study_names: Sequence[str],
              cells: Mapping[str, Mapping[str, Any]] | None = None) -> list[Run]:
    """Read the named studies; a missing storage or study is a UserError naming it.

    `cells` (a bench's runs: study name to target, method, seed and budget)
    lets a study that does not exist yet be a run that has not started,
    as on a bench still running; unless none exists, which is the wrong
    storage rather than an early look.
    """
    storage = open_existing(storage_url)
    names = list(dict.fromkeys(study_names))
    found = {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    runs = []
    for name in names:
        if name not in found and (cells is None or name not in cells or not found.intersection(names)):
            raise UserError(f"no study {name!r} in storage {redact_url(storage_url)}; pass the storage the runs "
                            f"were written to (--storage)")
        if name not in found:
            assert cells is not None
            runs.append(Run(name=name, attrs={**cells[name], "status": NOT_STARTED}, maximize=True, trials=[],
                            best=None))
            continue
        try:
            runs.append(read_run(optuna.load_study(study_name=name, storage=storage)))
        except KeyError:  # deleted since it was listed (a bench clearing a failed run to try it again)
            runs.append(Run(name=name, attrs={**(cells or {}).get(name, {}), "status": NOT_STARTED}, maximize=True,
                            trials=[], best=None))
    return runs


def load_run(storage_url: str, study_name: str) -> Run:
    return load_runs(storage_url, [study_name])[0]
