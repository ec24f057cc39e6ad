"""How fast is our trainer compared with the usual way, and with the hardware?

Why: `tuning_targets/trainer.py` holds each split as one tensor and slices
batches out of it instead of using a DataLoader. This script checks that the
design pays off, and that the loop adds little on top of the model's own
forward/backward/step cost.

How: the MNIST CNN of the `mnist` target (default config: two conv blocks,
one hidden dense layer; SGD with Nesterov momentum as in the defaults) is
trained for one epoch on the real subset in the data dir, three ways, on the
same number of samples (the target's train split, full batches only):

  (a) trainer  - our `train()` on the target's splits, epochs=1. Timed: the
                 whole `train()` call minus the time of its evaluation passes
                 (validation and the final test evaluation, timed in the same
                 calls), so it does the same work as (b) and (c). The whole
                 call's figure is printed beside it.
  (b) torchvision - the tutorial pipeline: `datasets.MNIST` with
                 `Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`,
                 `DataLoader(batch_size, shuffle=True, num_workers=0)` over
                 the same number of images, same model and optimiser, one
                 epoch, no evaluation (so it is favoured, if anything).
  (c) ceiling  - the same number of optimiser steps on one batch already in
                 memory: the model's compute alone, no data handling at all.

Each way runs `--repeats` times, interleaved (and rotated) so background noise
hits all three alike; the median is reported. Targets: ratio = a/b >= 2 and
efficiency = a/c >= 0.85. It always exits 0: it is a benchmark, not a test.

Run from the repo root:
    .venv/bin/python benchmarks/trainer_throughput.py [--data-dir DIR] [--repeats 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `python benchmarks/trainer_throughput.py` works without installing
    sys.path.insert(0, str(REPO))

import torch
from torch import nn

from tuning_targets import trainer
from tuning_targets.registry import make_target
from tuning_targets.torch_target import TorchTarget
from tuning_targets.trainer import TensorSplits, TrainSettings, make_optimizer, train

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
RATIO_TARGET = 2.0
EFFICIENCY_TARGET = 0.85


def build(target: TorchTarget, data: TensorSplits, settings: TrainSettings, seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The target's default CNN and optimiser, identically initialised for every way."""
    torch.manual_seed(seed)
    model = target.build_model(target.default_config, data)
    return model, make_optimizer(settings, model.parameters())


def run_trainer(target: TorchTarget, data: TensorSplits, settings: TrainSettings, device: torch.device) -> tuple[float, float]:
    """Seconds of the whole `train()` call, and of the evaluation passes inside it."""
    model, _ = build(target, data, settings, 0)
    evaluate, eval_seconds = trainer._evaluate, [0.0]

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:  # the device is idle when train() evaluates
        started = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            eval_seconds[0] += time.perf_counter() - started

    trainer._evaluate = timed_evaluate
    try:
        started = time.perf_counter()
        result = train(model, data, settings, task="classification", seed=0, device=device)
        seconds = time.perf_counter() - started
    finally:
        trainer._evaluate = evaluate
    assert result.ok, result.fail_reason
    return seconds, eval_seconds[0]


def run_torchvision(target: TorchTarget, data: TensorSplits, settings: TrainSettings, device: torch.device,
                    data_dir: Path, n_samples: int) -> float:
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    dataset = Subset(datasets.MNIST(str(data_dir), train=True, download=False, transform=transform),
                     range(n_samples))
    model, optimizer = build(target, data, settings, 0)
    model.to(device).train()
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    # drop_last so it takes exactly as many steps as the trainer does
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, num_workers=0, drop_last=True)
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    loss.item()  # wait for the device
    return time.perf_counter() - started


def run_ceiling(target: TorchTarget, data: TensorSplits, settings: TrainSettings, device: torch.device,
                steps: int) -> float:
    model, optimizer = build(target, data, settings, 0)
    model.to(device).train()
    loss_fn = nn.CrossEntropyLoss()
    xb = data.x_train[:settings.batch_size].to(device)
    yb = data.y_train[:settings.batch_size].to(device)
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    loss.item()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"folder holding MNIST/raw (default: ../shared/data from the repo, {DEFAULT_DATA_DIR})")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each way; the median counts (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per optimiser step (default 64)")
    args = parser.parse_args(argv)
    repeats, batch_size = max(1, args.repeats), args.batch_size
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    target = make_target("mnist", data_dir=args.data_dir)
    assert isinstance(target, TorchTarget)  # mnist trains a torch CNN
    data = target.load_splits(target.default_config)
    settings = TrainSettings.from_config(target.default_config | {"batch_size": batch_size, "epochs": 1})
    n = len(data.x_train)
    steps = max(1, n // min(batch_size, n))
    samples = steps * min(batch_size, n)  # the trainer drops the ragged last batch; so do the others
    n_eval = len(data.x_val) + len(data.x_test)

    trainer_eval: list[float] = []

    def trainer_way() -> float:
        seconds, eval_seconds = run_trainer(target, data, settings, device)
        trainer_eval.append(eval_seconds)
        return seconds

    ways: dict[str, Callable[[], float]] = {
        "trainer": trainer_way,
        "torchvision": lambda: run_torchvision(target, data, settings, device, args.data_dir, n),
        "ceiling": lambda: run_ceiling(target, data, settings, device, steps),
    }
    print(f"MNIST CNN, 1 epoch: {samples} samples = {steps} steps x {batch_size}, {n_eval} samples evaluated by "
          f"train(); device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    # Warm-up, untimed: thread pool, oneDNN kernels for every batch shape, allocator, file cache.
    few = dataclasses.replace(data, x_train=data.x_train[:4 * batch_size], y_train=data.y_train[:4 * batch_size])
    run_trainer(target, few, settings, device)
    run_torchvision(target, data, settings, device, args.data_dir, 4 * batch_size)
    run_ceiling(target, data, settings, device, 4)
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(repeats):
        for name in names[r % 3:] + names[:r % 3]:  # interleaved, order rotated across repeats
            times[name].append(ways[name]())

    rows = {"a trainer": [t - e for t, e in zip(times["trainer"], trainer_eval)],
            "  + evaluation": times["trainer"],
            "b torchvision": times["torchvision"], "c ceiling": times["ceiling"]}
    rate = {name: samples / statistics.median(t) for name, t in rows.items()}
    print(f"{'way':<15}{'median s':>9}{'samples/s':>11}   each run (samples/s)")
    for name, t in rows.items():
        print(f"{name:<15}{statistics.median(t):>9.3f}{rate[name]:>11,.0f}   {', '.join(f'{samples / s:,.0f}' for s in t)}")

    def verdict(value: float, goal: float) -> str:
        return f"{value:.2f}  (target >= {goal:g}: {'met' if value >= goal else 'MISSED'})"

    print(f"ratio      = a/b = {verdict(rate['a trainer'] / rate['b torchvision'], RATIO_TARGET)}")
    print(f"efficiency = a/c = {verdict(rate['a trainer'] / rate['c ceiling'], EFFICIENCY_TARGET)}")
    print(f"  with train()'s evaluation passes counted: a/b = {rate['  + evaluation'] / rate['b torchvision']:.2f}, "
          f"a/c = {rate['  + evaluation'] / rate['c ceiling']:.2f}")
    print("a = our trainer's training pass, timed inside whole train() calls minus their evaluation passes, so it "
          "does the same work as b and c;\n'+ evaluation' = the whole train() call (per-epoch validation, best "
          f"weights, final test evaluation; {n_eval} samples evaluated). Medians of {repeats} interleaved runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
