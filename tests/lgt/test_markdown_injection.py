"""Issue 23.8: names from data are text, never markdown structure, wherever lgt shows them.

A CSV named `inj <img src=x onerror=alert(1)> **B** [x](report.md)` + a
newline + `## Round 7: trial #0 FAKE.csv`, with column names, categorical
values and labels of the same kind, is tuned by real `lgt tune`, `lgt
baseline` and `lgt bench` processes (the LLM scripted behind a real port).
Its name must stay one escaped line in changelog.md, report.md, table.md,
report.html and the terminal: no fake round, no live link, no HTML.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from cli_process import run_lgt
from llm_server import serve
from scripted_llm import ScriptedLLM

from lgt.reporting.html import markdown_to_html
from lgt.reporting.text import md

NAME = "inj <img src=x onerror=alert(1)> **B** [x](report.md)\n## Round 7: trial #0 FAKE"
LABEL_COLUMN = "label [y](report.md)\n## H"
TRIALS = 3


@pytest.fixture
def hostile_csv(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / f"{NAME}.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["col **x** | <b>\n## Col", "cat [c](report.md)", LABEL_COLUMN])
        for i in range(60):
            writer.writerow([i % 9, "**v**" if i % 2 else "[w](report.md)", "**A**" if i % 9 > 4 else "[b](report.md)"])
    return path


def _no_structure_from_the_name(text: str, where: str, markdown: bool = True) -> None:
    lines = text.splitlines()
    assert not any(line.startswith("## Round 7") for line in lines), where
    assert not any(line.startswith(("## Col", "## H")) for line in lines), where
    if markdown:  # a link or a tag only with its brackets unescaped
        assert "[x](report.md)" not in text and "[y](report.md)" not in text, where
        assert not re.search(r"(?<!\\)<(img|b)\b", text), where


def _html_ok(page: str, rounds: int | None) -> None:
    assert "<img src=x" not in page and 'href="report.md"' not in page
    assert "&lt;img src=x onerror=alert(1)&gt; **B** [x](report.md) ## Round 7: trial #0 FAKE" in page
    if rounds is not None:
        ids = re.findall(r'id="trial-(\d+)"', page)
        assert len(ids) == rounds and len(set(ids)) == rounds, ids


def test_a_hostile_csv_name_stays_text_in_every_file_and_on_the_terminal(tmp_path: Path, hostile_csv: Path) -> None:
    results = tmp_path / "results"
    target = ["--target-column", LABEL_COLUMN]
    with serve(ScriptedLLM()) as base_url:
        env = {"OPENAI_API_KEY": "sk-test-md", "OPENAI_BASE_URL": base_url}
        tune = run_lgt("tune", "--target", f"csv:{hostile_csv}", *target, "--trials", str(TRIALS), "--run-id",
                       "hostile", "--optimize-every", "0", results=results, env=env)
        assert tune.returncode == 0, tune.stderr[-3000:]
        base = run_lgt("baseline", "--target", f"csv:{hostile_csv}", *target, "--method", "random", "--trials", "2",
                       "--run-id", "hostile-base", results=results, env=env)
        assert base.returncode == 0, base.stderr[-3000:]
        bench = run_lgt("bench", "--targets", f"csv:{hostile_csv}", *target, "--methods", "default,random",
                        "--trials", "2", "--seeds", "1", results=results, env=env)
        assert bench.returncode == 0, bench.stderr[-3000:]

    run = results / "hostile"
    log = (run / "changelog.md").read_text()
    _no_structure_from_the_name(log, "changelog.md")
    assert sum(line.startswith("## Round ") for line in log.splitlines()) == TRIALS
    assert f"Target **{md(NAME.replace(chr(10), ' '))}**" in log
    for folder in (run, results / "hostile-base"):
        _no_structure_from_the_name((folder / "report.md").read_text(), f"{folder.name}/report.md")
    _html_ok((run / "report.html").read_text(), TRIALS)
    _html_ok((results / "hostile-base" / "report.html").read_text(), None)

    (bench_dir,) = (results / "bench").iterdir()
    for name in ("table.md", "report.md"):
        _no_structure_from_the_name((bench_dir / name).read_text(), f"bench {name}")
    header = next(line for line in (bench_dir / "table.md").read_text().splitlines() if line.startswith("| method"))
    assert header.count(" | ") == 1  # one target column: the name's `|` and newline made no cell or row
    _html_ok((bench_dir / "report.html").read_text(), None)

    for proc in (tune, base, bench):  # the terminal: the name's newline is shown as \n, on the line it belongs to
        for stream in (proc.stdout, proc.stderr):
            _no_structure_from_the_name(stream, "terminal", markdown=False)
    assert "/ default / seed 1" in bench.stderr and "\\n## Round 7: trial #0 FAKE.csv / default" in bench.stderr


def test_escaped_text_renders_as_the_same_characters_in_html(tmp_path: Path) -> None:
    for text in (NAME, "a_b _c_ *d* `e` \\f | g & h ~i~ ![j](k.png) #l"):
        page = markdown_to_html(f"Target **{md(text)}**", tmp_path)
        visible = re.sub(r"<[^>]+>", "", page).replace("&lt;", "<").replace("&gt;", ">").replace(
            "&quot;", '"').replace("&#x27;", "'").replace("&amp;", "&")
        assert visible == "Target " + " ".join(text.split()), page
