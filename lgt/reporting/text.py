"""Numbers and names as people read them, the same in every file lgt writes."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

from agents import formatting

# Characters that make markdown structure inline: emphasis, code, links and images, HTML, tables, strikethrough,
# entities and escapes. `_` only where it can open or close emphasis (not inside a word like breast_cancer).
_MD_SPECIAL = re.compile(r"[\\`*\[\]<>|!~&#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def metric_label(metric: Any) -> str:
    """The metric as people write it: MAE and RMSE in capitals, accuracy as is."""
    name = str(metric or "metric")
    return name.upper() if name.lower() in ("mae", "mse", "rmse") else name


def value(v: Any) -> str:
    """A config value: numbers as the agents read them (`agents.formatting`), text and booleans as JSON."""
    return json.dumps(v) if isinstance(v, (bool, str)) else formatting.value(v)


def fixed(v: Any, decimals: int) -> str:
    """A metric to a fixed number of decimals; "n/a" when missing."""
    return "n/a" if v is None else f"{float(v):.{decimals}f}"


def short(v: Any, digits: int = 4) -> str:
    """A number in a terminal table: "-" when missing, floats to `digits` significant digits."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def seconds(v: Any) -> str:
    s = float(v)
    return f"{s:.1f} s" if s < 100 else f"{s:,.0f} s"


def md(text: Any) -> str:
    """Text from data (a file's name, a column, a label, a path in an error) as markdown that shows exactly it.

    One line (a newline in a file name would start a heading of its own),
    and every character that could make markup escaped with a backslash, so
    `**B**`, `[x](report.md)` or `<img>` read as those characters in
    changelog.md, report.md, a table cell and report.html alike.
    """
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), line(text))


def line(text: Any) -> str:
    """Free text on one line: every run of white space (newlines included) is one space."""
    return " ".join(str(text).split())


def cell(text: str) -> str:
    """Free text (an LLM's reason) as one markdown table cell: one line, no column breaks."""
    return line(text).replace("|", "/")


def one_line(text: Any) -> str:
    """Text for the terminal: control characters (newlines, escape sequences) shown as escapes, never obeyed."""
    return "".join(ch if ch == " " or unicodedata.category(ch)[0] not in "CZ" or ch.isprintable()
                   else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def plot_text(text: Any) -> str:
    """Text for a plot's title or legend: one line, and `$` kept literal (matplotlib reads $...$ as maths)."""
    return line(text).replace("$", r"\$")


def trials(mean: float) -> str:
    return f"{mean:.0f} trial{'s' if mean != 1 else ''}" if mean.is_integer() else f"{mean:.1f} trials"


def as_float(v: Any) -> float | None:
    """A finite float, or None for anything missing, unreadable or infinite."""
    try:
        number = float(v)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_int(v: Any) -> int | None:
    number = as_float(v)
    return None if number is None else int(number)
