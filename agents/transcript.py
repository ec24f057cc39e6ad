"""A JSONL record of every LLM call, so a run's reasoning can be audited.

One line per call, failed ones included. The file is opened in append mode
for each record, so a resumed run continues the same file, and a line cut
short by a crash does not swallow the next one.

Every line is redacted before it is written: the configured secrets of each
client that writes here, and anything shaped like an OpenAI key.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

REDACTED = "[REDACTED]"
_KEY_LIKE = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


@dataclass(frozen=True)
class CallRecord:
    """One LLM call: what was asked, what came back, what it cost.

    ``raw`` keeps the first few thousand characters of the reply and
    ``raw_chars`` its full length. ``prompt_eval_s`` / ``generation_s`` split
    the server's time between reading the prompt (``prompt_evaluated``
    tokens of it, after any prefix cache) and writing the reply, where the
    server reports them (llama.cpp's and the embedded one do); None elsewhere.
    """

    agent: str
    attempt: int
    messages: list[dict[str, str]]
    raw: str | None
    parsed: dict[str, Any] | None
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    fallback: bool = False
    model: str | None = None
    raw_chars: int | None = None
    prompt_eval_s: float | None = None
    generation_s: float | None = None
    prompt_evaluated: int | None = None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret and every ``sk-...`` key replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)


class Transcript:
    """Appends `CallRecord` lines to ``path``; with ``path`` None records are dropped (tests, dry runs)."""

    def __init__(self, path: Path | str | None, secrets: tuple[str, ...] = ()) -> None:
        self.path = Path(path) if path is not None else None
        self._secrets: set[str] = set()
        self.protect(secrets)

    def protect(self, secrets: tuple[str, ...]) -> None:
        """Add strings to redact; each agent registers its client's secrets here."""
        for secret in secrets:
            if secret:
                self._secrets.add(secret)
                # Inside JSON a secret may appear escaped.
                self._secrets.add(json.dumps(secret)[1:-1])

    def redact(self, text: str) -> str:
        """``text`` safe to write or show."""
        return redact(text, self._secrets)

    def append(self, record: CallRecord) -> None:
        """Write one record, redacted, as one line."""
        if self.path is None:
            return
        line = self.redact(json.dumps(asdict(record), ensure_ascii=False))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(("\n" if _torn(self.path) else "") + line + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All complete records so far; a torn last line from a crash is skipped."""
        if self.path is None or not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def usage(self) -> dict[str, float]:
        """Totals of every call so far: seconds (and how the server split them), prompt and completion tokens.

        Read from the file, not kept in memory, so the totals survive a
        resumed run; the bench splits wall time with them.
        """
        totals = {"llm_seconds": 0.0, "llm_prompt_tokens": 0.0, "llm_completion_tokens": 0.0, "llm_calls": 0.0,
                  "llm_prompt_eval_seconds": 0.0, "llm_generation_seconds": 0.0}
        for record in self.read():
            totals["llm_seconds"] += float(record.get("latency_s") or 0)
            totals["llm_prompt_tokens"] += float(record.get("prompt_tokens") or 0)
            totals["llm_completion_tokens"] += float(record.get("completion_tokens") or 0)
            totals["llm_prompt_eval_seconds"] += float(record.get("prompt_eval_s") or 0)
            totals["llm_generation_seconds"] += float(record.get("generation_s") or 0)
            totals["llm_calls"] += 1
        return totals


def _torn(path: Path) -> bool:
    """True when the file's last line was cut short (a crash mid-write)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"
