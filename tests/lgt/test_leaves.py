"""The leaf modules every layer may import stay leaves: they import the standard library and each other only.

pyproject.toml's import contract lets `agents`, `graphs` and `tuning_targets`
import these modules of `lgt` (and no other); that is safe only while they
pull nothing of the layers in with them.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def leaves() -> list[str]:
    """The modules the contract's `ignore_imports` lets the lower layers import."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return sorted(set(re.findall(r'"(?:agents|graphs|tuning_targets)\.\*\* -> (lgt\.\w+)"', text)))


def test_the_contract_names_the_leaves() -> None:
    assert {"lgt.errors", "lgt.direction"} <= set(leaves())


@pytest.mark.parametrize("module", leaves())
def test_a_leaf_imports_only_the_standard_library_and_other_leaves(module: str) -> None:
    tree = ast.parse((ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    outside = {name for name in imported
               if name.split(".")[0] not in sys.stdlib_module_names and name not in leaves()}
    assert not outside, f"{module} imports {sorted(outside)}"
