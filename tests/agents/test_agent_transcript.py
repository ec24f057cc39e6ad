from __future__ import annotations

from pathlib import Path

from agent_fakes import SECRET

from agents import CallRecord, Transcript, redact


def record(text: str, attempt: int = 1) -> CallRecord:
    return CallRecord(
        agent="advisor",
        attempt=attempt,
        messages=[{"role": "user", "content": text}],
        raw=text,
        parsed=None,
        error=None,
        prompt_tokens=None,
        completion_tokens=None,
        latency_s=0.1,
    )


def test_appends_across_a_resumed_run_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "run" / "transcript.jsonl"
    Transcript(path).append(record("first"))
    with path.open("a") as f:
        f.write('{"agent": "advis')  # the process died mid-write
    resumed = Transcript(path)
    resumed.append(record("second", attempt=2))
    assert [(r["raw"], r["attempt"]) for r in resumed.read()] == [("first", 1), ("second", 2)]


def test_secrets_and_key_shaped_strings_are_redacted(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.jsonl", secrets=("hunter2-local-token",))
    transcript.append(record(f"key {SECRET}, token hunter2-local-token, other sk-proj-abcdef123456"))
    text = (tmp_path / "t.jsonl").read_text()
    assert SECRET not in text and "hunter2" not in text and "abcdef123456" not in text
    assert redact("no secrets here") == "no secrets here"
