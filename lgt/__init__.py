"""Language-Guided Tuning: LLM agents tune a model and explain each change; classic HPO runs beside it.

The public API:

- `LGTSampler`: the LGT loop (TPE's candidates, the Advisor's choice with a
  gate, the Evaluator's judgement and textual gradient, the Optimizer's
  guidance, every sentence checked) as an Optuna sampler, on any objective.
- `tune`: what ``lgt tune`` does, on lgt's own targets.
- `report`: what ``lgt report`` does, for a run, a bench, or any study.

Example:
    .. code-block:: python

        import optuna
        import lgt

        study = optuna.create_study(direction="maximize",
                                    sampler=lgt.LGTSampler(description="my model", seed=0))
        study.optimize(objective, n_trials=20)
        lgt.report(storage=..., study=study.study_name)

The names load on first use, so ``import lgt`` (and the ``lgt`` command)
stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lgt.api import report, tune
    from lgt.sampler import LGTSampler

__all__ = ["LGTSampler", "report", "tune"]


def __getattr__(name: str) -> Any:
    if name == "LGTSampler":
        from lgt.sampler import LGTSampler

        return LGTSampler
    if name in ("tune", "report"):
        from lgt import api

        return getattr(api, name)
    raise AttributeError(f"module 'lgt' has no attribute {name!r}")
