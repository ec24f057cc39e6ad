"""Copies of a training run's state, so an epoch can be trained twice from the same point.

An A/B check trains the next epoch with and without a change and keeps the
better one; that is only a fair test if both branches start from the same
weights, optimiser moments, schedule position and random streams. The
copies stay on the device when they fit (a GPU-to-host round trip per epoch
would cost more than the epoch on small models) and fall back to host
memory otherwise.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Keep a snapshot on the GPU only while it needs less than this share of the free memory.
DEVICE_SHARE = 0.5


@dataclass(frozen=True)
class RngState:
    """Every random stream a training epoch draws from."""

    torch_cpu: torch.Tensor
    torch_cuda: list[torch.Tensor] | None
    numpy: Any
    python: Any
    generators: tuple[torch.Tensor, ...]

    @classmethod
    def capture(cls, generators: tuple[torch.Generator, ...]) -> RngState:
        initialized = torch.cuda.is_available() and torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
        cuda = torch.cuda.get_rng_state_all() if initialized else None
        return cls(torch.get_rng_state(), cuda, np.random.get_state(), random.getstate(),
                   tuple(g.get_state() for g in generators))

    def restore(self, generators: tuple[torch.Generator, ...]) -> None:
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)
        np.random.set_state(self.numpy)
        random.setstate(self.python)
        for generator, state in zip(generators, self.generators, strict=True):
            generator.set_state(state)


def keep_on_device(device: torch.device, nbytes: int) -> bool:
    """Whether a copy of `nbytes` may stay on `device` (always on the CPU)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < DEVICE_SHARE * free


def tensor_bytes(tree: Any) -> int:
    """Bytes of every tensor in a nested dict/list/tuple."""
    if isinstance(tree, torch.Tensor):
        return tree.element_size() * tree.nelement()
    if isinstance(tree, dict):
        return sum(tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(tensor_bytes(v) for v in tree)
    return 0


def clone_tree(tree: Any, to_host: bool) -> Any:
    """A deep copy whose tensors are detached clones, moved to the host when `to_host`."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True) if to_host else tree.detach().clone()
    if isinstance(tree, dict):
        return {k: clone_tree(v, to_host) for k, v in tree.items()}
    if isinstance(tree, list):
        return [clone_tree(v, to_host) for v in tree]
    if isinstance(tree, tuple):
        return tuple(clone_tree(v, to_host) for v in tree)
    return copy.deepcopy(tree)
