"""A run's plots attached to its study and trials as Optuna artifacts, for optuna-dashboard to show.

The PNGs a run folder holds (convergence.png, curves.png and each
schedule-trial<N>.png) are uploaded to a FileSystemArtifactStore beside the
storage, the one `lgt dashboard` serves. They go on the study: Optuna
attaches an artifact to a trial only while it runs, and an LGT trial is
stored finished, so a schedule plot is found by its name, which holds the
trial's number. Files are rewritten
whenever the run's files are (after the run, and on `lgt report`), so an
artifact is matched by file name and its content replaced in place when the
figure changed: a rebuild never piles up copies.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from lgt import environment
from lgt.reporting.changelog import schedule_plot_name
from lgt.settings import results_dir
from lgt.studies import sqlite_file

log = logging.getLogger(__name__)

ARTIFACT_DIR_ENV = environment.ARTIFACT_DIR.name


def artifact_dir(storage_url: str) -> Path:
    """Where a storage's artifacts live: `artifacts/` beside a SQLite file, else $LGT_ARTIFACT_DIR.

    A SQLite storage is a file people move or copy with its folder, so its
    plots sit next to it; a database server has no folder, so those runs use
    $LGT_ARTIFACT_DIR (default: the results folder's `artifacts/`).
    """
    file = sqlite_file(storage_url)
    if file is not None:
        return file.parent / "artifacts"
    return Path(environment.ARTIFACT_DIR.text() or results_dir() / "artifacts")


def artifact_store(storage_url: str) -> FileSystemArtifactStore:
    """The artifact store of a storage (its folder created), shared by the writers and `lgt dashboard`."""
    folder = artifact_dir(storage_url)
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(folder)


def attach(study: optuna.Study, store: FileSystemArtifactStore, path: Path) -> str | None:
    """Attach `path` to the study under its file name; returns the artifact id.

    An artifact of the same file name already attached keeps its id and gets
    the new content when it differs; otherwise the file is uploaded. None
    when the study's artifacts cannot be listed (see `_attached`), since
    uploading blind would add a copy on every rebuild.
    """
    attached = _attached(study)
    if attached is None:
        return None
    same = attached.get(path.name)
    if same is None:
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study)
    if _stored(store, same) != path.read_bytes():
        with open(path, "rb") as fh:
            store.write(same, fh)
    return same


def attach_run_figures(study: optuna.Study, storage_url: str, folder: Path, figures: list[Path]) -> list[str]:
    """The run's figures and the schedule plots its folder holds, on its study; returns their artifact ids."""
    store = artifact_store(storage_url)
    schedules = [folder / schedule_plot_name(t.number) for t in study.get_trials(deepcopy=False)]
    ids = [attach(study, store, path) for path in [*figures, *schedules] if path.is_file()]
    return [i for i in ids if i is not None]


def _attached(study: optuna.Study) -> dict[str, str] | None:
    """The study's artifacts, file name to id (the first of a name); None if Optuna cannot list them.

    optuna-dashboard marks an artifact deleted in its UI with a null that
    `get_all_artifact_meta` (Optuna 5.0) fails to read; such a study's plots
    are left as they are rather than uploaded again beside the old ones.
    """
    try:
        metas = get_all_artifact_meta(study)
    except (TypeError, KeyError):
        log.warning("Optuna cannot list the artifacts of study %s (one was deleted in optuna-dashboard); its "
                    "plots are not attached again", study.study_name)
        return None
    found: dict[str, str] = {}
    for meta in metas:
        found.setdefault(meta.filename, meta.artifact_id)
    return found


def _stored(store: FileSystemArtifactStore, artifact_id: str) -> bytes | None:
    try:
        with store.open_reader(artifact_id) as fh:
            return fh.read()
    except ArtifactNotFound:
        return None
