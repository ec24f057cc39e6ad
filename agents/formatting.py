"""How a knob or metric value is written in what the agents read and in the sentences code writes.

One rule, so a number the Advisor read in its prompt ("lr 0.001235") is the
same text the checks look for in its reply and the change log shows
(`agents.wording` grounds an LLM's numbers in the ones it was shown).
"""

from __future__ import annotations


def value(v: object) -> str:
    """Floats to 4 significant digits (0.001235, 1.235e+04); anything else as `str` gives it."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)
