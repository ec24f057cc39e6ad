"""Tune a scikit-learn model with lgt's agents as an Optuna sampler.

    python examples/sklearn_breast_cancer.py            # 10 trials, the embedded model, offline

HistGradientBoosting on scikit-learn's breast cancer data, scored by 3-fold
cross-validated accuracy. The agents read the knob notes, choose among TPE's
candidates and explain each change; the change log is written to
examples-out/breast_cancer/changelog.md as the study runs.
"""

from __future__ import annotations

import argparse

import optuna
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import cross_val_score

import lgt


def objective(trial: optuna.Trial) -> float:
    X, y = load_breast_cancer(return_X_y=True)
    model = HistGradientBoostingClassifier(
        learning_rate=trial.suggest_float("learning_rate", 0.01, 1.0, log=True),
        max_leaf_nodes=trial.suggest_int("max_leaf_nodes", 4, 128, log=True),
        min_samples_leaf=trial.suggest_int("min_samples_leaf", 1, 100, log=True),
        l2_regularization=trial.suggest_float("l2_regularization", 0.0, 10.0),
        max_iter=trial.suggest_int("max_iter", 20, 300, log=True),
        random_state=0,
    )
    return float(cross_val_score(model, X, y, cv=3, scoring="accuracy").mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--storage", default="sqlite:///examples-out/studies.db")
    parser.add_argument("--out", default="examples-out/breast_cancer")
    args = parser.parse_args()
    import pathlib

    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    sampler = lgt.LGTSampler(
        description="HistGradientBoosting on breast cancer, 3-fold CV accuracy", seed=0, metric="cv accuracy",
        knob_notes={"learning_rate": "shrinks each tree's contribution; lower needs more iterations",
                    "max_leaf_nodes": "leaves per tree; more fits finer patterns and overfits sooner",
                    "min_samples_leaf": "smallest leaf; larger regularises",
                    "l2_regularization": "L2 penalty on leaf values",
                    "max_iter": "boosting iterations (trees)"},
        out_dir=args.out)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=args.storage,
                                study_name="breast-cancer-hgb", load_if_exists=True)
    study.optimize(objective, n_trials=args.trials)
    print(f"best cv accuracy {study.best_value:.4f} with {study.best_params}")
    print(f"report: {lgt.report(storage=args.storage, study=study.study_name, out_dir=args.out)}")


if __name__ == "__main__":
    main()
