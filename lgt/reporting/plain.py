"""What `lgt report --study` writes for an Optuna study lgt did not run: its trials, its best, two plots.

A study sampled by `lgt.LGTSampler` (or run by `lgt tune` / `lgt baseline`)
is an lgt run and gets the run files (change log, report.md, report.html);
any other study gets this: trials.csv, report.md with the best trial and
the best ten, a convergence plot and the value against each parameter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from lgt import methods
from lgt.direction import Direction, best_first, is_better
from lgt.reporting.plots import Series, _finish, _save, convergence
from lgt.reporting.text import md, value
from lgt.reporting.writing import write_whole
from lgt.studies import study_direction

TOP = 10
PARAMETER_PLOTS = 4


def is_lgt_run(study: optuna.Study) -> bool:
    """Whether lgt ran or sampled this study (then it is a run with a change log), not a plain Optuna study."""
    return methods.find(str(study.user_attrs.get("method", ""))) is not None


def write_plain_report(study: optuna.Study, folder: Path) -> dict[str, Any]:
    """trials.csv, report.md and plots of a plain study in `folder`; returns where they are."""
    folder.mkdir(parents=True, exist_ok=True)
    write_whole(folder / "trials.csv", study.trials_dataframe().to_csv(index=False))
    direction = study_direction(study)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.value is not None]
    ranked = best_first(done, direction, lambda t: t.value)
    states = {s.name.lower(): sum(t.state == s for t in study.trials) for s in TrialState}
    lines = [f"# Optuna study {md(study.study_name)}", "",
             (f"{len(study.trials)} trials ({', '.join(f'{n} {s}' for s, n in states.items() if n)}), "
             f"{'maximizing' if direction == 'maximize' else 'minimizing'} the objective. This study was not run by lgt, so it has "
             f"no change log; these are its numbers."), ""]
    if ranked:
        best = ranked[0]
        lines += [f"**Best:** trial #{best.number}, value **{value(best.value)}**, with "
                  + (", ".join(f"{md(k)}={value(v)}" for k, v in best.params.items()) or "no parameters") + ".", ""]
        names = list(dict.fromkeys(k for t in ranked[:TOP] for k in t.params))
        lines += [f"## The best {min(TOP, len(ranked))} trials", "",
                  "| trial | value | " + " | ".join(md(n) for n in names) + " |",
                  "| ---: | ---: | " + " | ".join("---" for _ in names) + " |"]
        lines += [f"| {t.number} | {value(t.value)} | " + " | ".join(value(t.params[n]) if n in t.params else "-"
                                                                 for n in names) + " |" for t in ranked[:TOP]]
        lines.append("")
        figures = [_convergence(study, direction, folder), *_by_parameter(study, done, folder)]
        lines += ["## Plots", "", *(f"![{p.stem}]({p.name})" for p in figures), ""]
    else:
        lines += ["No trial completed.", ""]
    lines += ["More: [trials.csv](trials.csv).", ""]
    report = folder / "report.md"
    write_whole(report, "\n".join(lines))
    return {"study_name": study.study_name, "report": str(report), "run_dir": str(folder)}


def _convergence(study: optuna.Study, direction: Direction, folder: Path) -> Path:
    best, so_far = math.nan, []
    for trial in study.trials:
        if trial.state == TrialState.COMPLETE and is_better(trial.value, best, direction):
            best = float(trial.value)  # type: ignore[arg-type]  # is_better never lets None win
        so_far.append(best)
    return convergence(folder / "convergence.png", title=f"{study.study_name}: best value so far",
                       ylabel="best value so far", series=[Series("trials", "#1f77b4", [so_far])])


def _by_parameter(study: optuna.Study, done: list[FrozenTrial], folder: Path) -> list[Path]:
    """The value against each of the first few parameters, one small plot each."""
    names = list(dict.fromkeys(k for t in done for k in t.params))[:PARAMETER_PLOTS]
    if not names:
        return []
    fig = Figure(figsize=(3.4 * len(names), 3.2), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        held = [t for t in done if name in t.params]
        xs = [t.params[name] for t in held]
        numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
        positions = xs if numeric else [sorted(map(str, set(xs))).index(str(x)) for x in xs]
        ax.scatter(positions, [t.value for t in held], s=18, color="#1f77b4")
        if not numeric:
            labels = sorted(map(str, set(xs)))
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        ax.set_xlabel(name)
        ax.set_ylabel("value")
        _finish(ax)
    return [_save(fig, folder / "parameters.png")]
