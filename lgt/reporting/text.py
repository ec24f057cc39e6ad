"""Numbers and names as people read them, the same in every file lgt writes."""

from __future__ import annotations

import json
import math
from typing import Any


def metric_label(metric: Any) -> str:
    """The metric as people write it: MAE and RMSE in capitals, accuracy as is."""
    name = str(metric or "metric")
    return name.upper() if name.lower() in ("mae", "mse", "rmse") else name


def value(v: Any) -> str:
    """A config value: floats to 4 significant digits, text and booleans as JSON."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if isinstance(v, (bool, str)) else str(v)


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


def md(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|")


def cell(text: str) -> str:
    """Free text (an LLM's reason) as one markdown table cell: one line, no column breaks."""
    return " ".join(str(text).split()).replace("|", "/")


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
