"""What a run ran on, in one line for the reports."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import optuna


def describe_machine() -> str:
    """CPU model, usable cores, GPU and software, in one line."""
    import torch  # here, not at the top: only the machine line needs it

    cpu = _cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {cores} CPU cores, {gpu}; {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, optuna {optuna.__version__}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
