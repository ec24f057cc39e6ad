"""The Python way to do what `lgt tune` and `lgt report` do (`lgt.tune`, `lgt.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lgt import methods
from lgt.options import OPTIONS, TUNE_TRIALS


def tune(target: str, *, trials: int = TUNE_TRIALS, seed: int = OPTIONS["seed"].default, storage: str | None = None,
         proposer: str = OPTIONS["proposer"].default, words: str = OPTIONS["words"].default,
         llm_base_url: str | None = None, llm_model: str | None = None,
         out_dir: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Tune one of lgt's targets with the LGT agents, as ``lgt tune`` does; returns the run's summary.

    Args:
        target: ``digits``, ``mnist``, ``cifar10``, a scikit-learn set (``iris``, ``wine``,
            ``breast_cancer``, ``diabetes``), ``csv:PATH`` (with ``target_column=``).
        trials: The trial budget, the untuned default config included.
        seed: Seed for training and TPE's candidates.
        storage: Optuna storage URL (default ``sqlite:///results/studies.db``).
        proposer: ``hybrid`` (the Advisor chooses among TPE's candidates), ``llm`` (free
            proposals) or ``tpe`` (TPE's pick, the agents explain).
        words: ``menu``, ``free`` or ``auto`` (see `lgt.LGTSampler`).
        llm_base_url: Any OpenAI-compatible endpoint; by default the embedded model.
        llm_model: The model name at the endpoint.
        out_dir: Where the run's files go (default ``results/<run-id>/``).
        options: Any other field of `lgt.tune.TuneRequest` (``target_column``, ``candidates``,
            ``optimize_every``, ``epoch_budget``, ``adapt``, ...).

    Returns:
        The summary: best trial, its validation and test metric, the change log's path and more.

    Example:
        .. code-block:: python

            import lgt

            summary = lgt.tune("digits", trials=6)
            print(summary["changelog"])
    """
    from lgt.tune import TuneRequest, run_tune

    request = TuneRequest(target=target, trials=trials, seed=seed, storage=storage,
                          method=methods.by_proposer(proposer).name, words=words, llm_base_url=llm_base_url,
                          llm_model=llm_model, out_dir=Path(out_dir) if out_dir is not None else None, **options)
    return run_tune(request)


def report(path: str | Path | None = None, *, storage: str | None = None, study: str | None = None,
           out_dir: str | Path | None = None) -> Path:
    """Write a run's or a bench's report from the storage, as ``lgt report`` does; returns report.md's path.

    Args:
        path: A run folder (``results/<run-id>/``) or a bench folder; or None with ``study``.
        storage: The Optuna storage URL (default ``sqlite:///results/studies.db``).
        study: A study's name: one `lgt.LGTSampler` sampled gets its change log, report.md and
            report.html; any other Optuna study gets tables and plots.
        out_dir: Where a ``study``'s files go (default ``results/<study>/``).

    Example:
        .. code-block:: python

            import lgt

            lgt.report(storage="sqlite:///my.db", study="my-study", out_dir="my-report")
    """
    from lgt.errors import UserError
    from lgt.reporting import rebuild, write_study_report
    from lgt.settings import default_storage_url, results_dir

    if study is not None:
        url = storage or default_storage_url()
        folder = Path(out_dir) if out_dir is not None else results_dir() / study
        return Path(write_study_report(url, study, folder)["report"])
    if path is None:
        raise UserError("report needs a run or bench folder, or study= (and storage=)")
    return rebuild(Path(path), storage)
