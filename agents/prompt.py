"""Prompt files: ``agents/prompts/<name>.md``.

A file holds a system and a user part, each introduced by a marker line
(``<!-- system -->``, ``<!-- user -->``); text before the first marker is a
note for maintainers and is not sent. Placeholders are `string.Template`
``$names``, so the JSON braces prompts are full of need no escaping, and a
missing value fails loudly instead of sending a hole to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

_MARKER = re.compile(r"^<!-- (system|user) -->\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptTemplate:
    """The system and user templates of one agent."""

    name: str
    system: Template
    user: Template

    def render(self, **values: str) -> list[dict[str, str]]:
        """The chat messages, placeholders filled."""
        return [
            {"role": "system", "content": self.system.substitute(values).strip()},
            {"role": "user", "content": self.user.substitute(values).strip()},
        ]


@cache
def load_prompt(name: str) -> PromptTemplate:
    """Read ``prompts/<name>.md`` from the installed package."""
    text = resources.files("agents").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    parts = _MARKER.split(text)
    sections = dict(zip(parts[1::2], parts[2::2]))
    if len(parts) != 5 or set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name}.md needs one <!-- system --> and one <!-- user --> section")
    return PromptTemplate(name, Template(sections["system"]), Template(sections["user"]))
