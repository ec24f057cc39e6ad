"""The terminal's narration of a run: one line per proposal, verdict, guidance and in-run epoch.

The graph reports these as data (`RunObserver.on_proposal` and friends) and
the console prints what this module makes of them, in the change log's
words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lgt.reporting.schedule import describe_entry
from lgt.reporting.text import value

VERDICT_CHARS = 140


def proposal_line(round_number: int, budget: int, proposal: Mapping[str, Any]) -> str:
    changes = ", ".join(f"{k}={value(v)}" for k, v in (proposal.get("changes") or {}).items()) or "the default config"
    return f"round {round_number}/{budget} [{proposal.get('source', '?')}]: {changes}"


def verdict_line(record: Mapping[str, Any], metric: str) -> str:
    if record.get("status") != "complete":
        return f"  trial #{record.get('number')}: failed - {record.get('fail_reason')}"
    verdict = record.get("verdict")
    if not verdict:  # a parallel round's other members: the Evaluator judges the round's best
        return f"  trial #{record.get('number')}: val {metric} {float(record['val_metric']):.4f}"
    flag = "new best" if verdict.get("is_new_best") else "not better"
    analysis = str(verdict.get("analysis") or "").split(". ")[0][:VERDICT_CHARS]
    return f"  verdict: val {metric} {float(record['val_metric']):.4f}, {flag}. {analysis}".rstrip()


def guidance_line(version: Mapping[str, Any]) -> str:
    if version.get("refused"):
        return f"  guidance refused ({'; '.join(version.get('problems') or [])}); v{version.get('kept')} stays"
    return f"  guidance v{version.get('version')}: {str(version.get('guidance', ''))[:VERDICT_CHARS]}"


def schedule_line(entry: Mapping[str, Any], metric: str) -> str:
    return "    " + describe_entry(entry, metric)
