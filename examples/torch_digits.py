"""Tune a small PyTorch training loop with lgt's agents as an Optuna sampler.

    python examples/torch_digits.py                     # 8 trials, the embedded model, offline

An MLP on scikit-learn's 8x8 digits. Each epoch reports its validation
accuracy with ``trial.report``: that curve is what the Evaluator reads to
judge a trial (plateau, still improving, unstable, ...). The change log is
written to examples-out/digits/changelog.md as the study runs.
"""

from __future__ import annotations

import argparse
import pathlib

import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import lgt


def objective(trial: optuna.Trial) -> float:
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    X_train, X_val = torch.tensor(X_train, dtype=torch.float32), torch.tensor(X_val, dtype=torch.float32)
    y_train, y_val = torch.tensor(y_train), torch.tensor(y_val)
    hidden = trial.suggest_categorical("hidden_units", [32, 64, 128, 256])
    dropout = trial.suggest_float("dropout", 0.0, 0.5)
    lr = trial.suggest_float("lr", 1e-4, 0.3, log=True)
    epochs = trial.suggest_int("epochs", 2, 20)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    accuracy = 0.0
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(X_train)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(X_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((model(X_val).argmax(1) == y_val).float().mean())
        trial.report(accuracy, epoch)  # the learning curve the agents read
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--storage", default="sqlite:///examples-out/studies.db")
    parser.add_argument("--out", default="examples-out/digits")
    args = parser.parse_args()
    pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
    sampler = lgt.LGTSampler(description="an MLP on 8x8 digits", seed=0, metric="accuracy", out_dir=args.out,
                             knob_notes={"lr": "SGD step size", "epochs": "passes over the training split"})
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=args.storage,
                                study_name="digits-mlp", load_if_exists=True)
    study.optimize(objective, n_trials=args.trials)
    print(f"best validation accuracy {study.best_value:.4f} with {study.best_params}")
    print(f"report: {lgt.report(storage=args.storage, study=study.study_name, out_dir=args.out)}")


if __name__ == "__main__":
    main()
