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
                 whole `train()` call, so it includes the validation pass,
                 keeping the best weights and the final val/test evaluation.
                 samples/s = training samples / that time.
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
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # so `python benchmarks/trainer_throughput.py` works without installing
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from tuning_targets.base import Target  # noqa: E402
from tuning_targets.registry import make_target  # noqa: E402
from tuning_targets.trainer import TensorSplits, TrainSettings, make_optimizer, train  # noqa: E402

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
RATIO_TARGET = 2.0
EFFICIENCY_TARGET = 0.85


def build(target: Target, data: TensorSplits, settings: TrainSettings, seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The target's default CNN and optimiser, identically initialised for every way."""
    torch.manual_seed(seed)
    model = target.build_model(target.default_config, data)
    return model, make_optimizer(settings, model.parameters())


def run_trainer(target: Target, data: TensorSplits, settings: TrainSettings, device: torch.device) -> float:
    model, _ = build(target, data, settings, 0)
    started = time.perf_counter()
    result = train(model, data, settings, task="classification", seed=0, device=device)
    seconds = time.perf_counter() - started
    assert result.ok, result.fail_reason
    return seconds


def run_torchvision(target: Target, data: TensorSplits, settings: TrainSettings, device: torch.device,
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


def run_ceiling(target: Target, data: TensorSplits, settings: TrainSettings, device: torch.device,
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
    data = target.load_splits(target.default_config)
    settings = TrainSettings.from_config(target.default_config | {"batch_size": batch_size, "epochs": 1})
    n = len(data.x_train)
    steps = max(1, n // min(batch_size, n))
    samples = steps * min(batch_size, n)  # the trainer drops the ragged last batch; so do the others

    ways: dict[str, Callable[[], float]] = {
        "trainer": lambda: run_trainer(target, data, settings, device),
        "torchvision": lambda: run_torchvision(target, data, settings, device, args.data_dir, n),
        "ceiling": lambda: run_ceiling(target, data, settings, device, steps),
    }
    print(f"MNIST CNN, 1 epoch: {samples} samples = {steps} steps x {batch_size}; device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; median of {repeats}")
    run_ceiling(target, data, settings, device, 20)  # warm-up: thread pool, oneDNN kernels, allocator
    times: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for r in range(repeats):
        for name in names[r % 3:] + names[:r % 3]:  # rotate the order across repeats
            times[name].append(ways[name]())

    rate = {name: samples / statistics.median(t) for name, t in times.items()}
    print(f"{'way':<12}{'median s':>10}{'samples/s':>12}   runs (samples/s)")
    for name, t in times.items():
        runs = ", ".join(f"{samples / s:,.0f}" for s in t)
        print(f"{name:<12}{statistics.median(t):>10.3f}{rate[name]:>12,.0f}   {runs}")
    ratio = rate["trainer"] / rate["torchvision"]
    efficiency = rate["trainer"] / rate["ceiling"]
    print(f"ratio      = a/b = {ratio:.2f}  (target >= {RATIO_TARGET:g}: {'met' if ratio >= RATIO_TARGET else 'MISSED'})")
    print(f"efficiency = a/c = {efficiency:.2f}  "
          f"(target >= {EFFICIENCY_TARGET:g}: {'met' if efficiency >= EFFICIENCY_TARGET else 'MISSED'})")
    print("a times the whole train() call (incl. validation, best-weights copy, final val/test eval); "
          "b and c time the training loop only.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
