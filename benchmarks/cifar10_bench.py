"""The LGT paper's CIFAR-10 row: the mnist bench of issue 22, run on CIFAR-10 where its files are.

The same methods, seeds, trial budget and epoch budget per run as the mnist
bench, on `cifar10`: the python version of CIFAR-10 in
`DATA/cifar-10-batches-py` (as cs.toronto.edu's cifar-10-python.tar.gz
unpacks; torchvision downloads it there when it is missing, unless
LGT_OFFLINE=1), split 42,500 / 7,500 / 10,000 for train / validation / test.
Training runs on the GPU when torch sees one (mixed precision there), else
on the CPU, which is many hours for the full set. Run:

    .venv/bin/python benchmarks/cifar10_bench.py --data-dir DATA

It checks the data set first (one line, exit 2, when it is missing or
unreadable), says which device trains, prints the `lgt bench` command it
runs, then runs it in this process: the bench's tables are printed at the
end and its report is under results/bench/<id>/. Running it again continues
the same bench (finished runs are skipped). `--llm-model` and
`--llm-base-url` choose the LGT runs' LLM, as for `lgt bench`; without them
the embedded model answers on the CPU.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run by path from anywhere
    sys.path.insert(0, str(REPO))

# The mnist bench of issue 22 (README): these methods and seeds, and per run this trial budget and epoch budget.
METHODS = "lgt,tpe,random,tpe-hyperband,default"
SEEDS = "1,2,3"
TRIALS = 15
EPOCH_BUDGET = 10


def bench_args(args: argparse.Namespace) -> list[str]:
    """The `lgt bench` arguments this script runs."""
    out = ["bench", "--targets", "cifar10", "--data-dir", str(args.data_dir), "--methods", args.methods,
           "--seeds", args.seeds, "--trials", str(args.trials), "--epoch-budget", str(args.epoch_budget)]
    for flag, value in (("--storage", args.storage), ("--llm-model", args.llm_model),
                        ("--llm-base-url", args.llm_base_url), ("--bench-id", args.bench_id)):
        if value is not None:
            out += [flag, value]
    return out


def device_line() -> str:
    """Which device the trials train on (the trainer's own choice), in words."""
    import torch

    from tuning_targets.trainer import pick_device

    device = pick_device()
    if device.type == "cuda":
        return f"training on the GPU: {torch.cuda.get_device_name(device)} (mixed precision)"
    return ("training on the CPU: torch sees no GPU, so the full CIFAR-10 bench takes many hours here "
            "(see README: the mnist bench is the one sized for two cores)")


def check_data(data_dir: Path) -> str:
    """The data set's split sizes, read now; a UserError (one line) when the files are missing or unreadable."""
    from tuning_targets import make_target

    target = make_target("cifar10", data_dir=data_dir)
    target.prepare(target.default_config)
    return target.data_summary()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="the folder holding cifar-10-batches-py (the python version of CIFAR-10)")
    parser.add_argument("--methods", default=METHODS, help=f"comma-separated methods (default {METHODS})")
    parser.add_argument("--seeds", default=SEEDS, help=f"comma-separated seeds (default {SEEDS})")
    parser.add_argument("--trials", type=int, default=TRIALS, help=f"trial budget per run (default {TRIALS})")
    parser.add_argument("--epoch-budget", type=int, default=EPOCH_BUDGET,
                        help=f"epochs per run over all its trials (default {EPOCH_BUDGET})")
    parser.add_argument("--storage", help="Optuna storage URL (default sqlite:///results/studies.db)")
    parser.add_argument("--llm-model", help="model for the LGT runs (see lgt tune)")
    parser.add_argument("--llm-base-url", help="OpenAI-compatible endpoint for the LGT runs (see lgt tune)")
    parser.add_argument("--bench-id", help="name of the bench (default: derived from what it measures)")
    args = parser.parse_args(argv)

    from lgt.cli import EXIT_USER_ERROR
    from lgt.cli import main as lgt_main
    from lgt.errors import UserError
    from lgt.reporting.text import one_line

    try:
        summary = check_data(args.data_dir)
    except UserError as exc:
        print(f"cifar10_bench: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    command = bench_args(args)
    print(f"cifar10: {summary}; {device_line()}", flush=True)
    print("running: lgt " + shlex.join(command), flush=True)
    return lgt_main(command)


if __name__ == "__main__":
    sys.exit(main())
