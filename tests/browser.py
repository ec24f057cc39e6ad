"""Headless Chromium for the tests that check what people see: optuna-dashboard's pages and report.html.

Debian's chromium is run as a command, one page per call: `--dump-dom`
prints the DOM after the page's scripts ran (`--virtual-time-budget` lets a
single-page app fetch and render its data first), `--screenshot` and
`--print-to-pdf` write files under the test's tmp dir, where they are kept
for a person to look at. Every call gets a fresh profile. The flags that
stop background networking matter here: without them Chromium's own
update and sync requests fail on a closed network and the page load fails
with them.

`scripts/ensure-chromium.sh` installs the browser (CI runs it); a test
machine without it and without root to install it skips these tests,
saying why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import count
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("LGT_CHROMIUM", "/usr/bin/chromium"))
ENSURE = Path(__file__).resolve().parents[1] / "scripts" / "ensure-chromium.sh"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars", "--mute-audio")
# Virtual time: the page's clock runs fast while it is idle, so this is what the page may spend, not a wait.
BUDGET_MS = 20_000
LIMIT_S = 180  # a hung browser fails the test instead of hanging the suite


def find_chromium() -> Path:
    """The chromium binary; installed with Debian's package when missing and we are root, else the test skips."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get); "
                    f"run scripts/ensure-chromium.sh as root")
    done = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not CHROMIUM.exists():
        pytest.skip(f"installing chromium failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return CHROMIUM


@dataclass
class Browser:
    """One headless Chromium binary, run once per page, writing under `root` (the test's tmp dir)."""

    binary: Path
    root: Path

    def __post_init__(self) -> None:
        self._profiles = count(1)

    def dump_dom(self, url: str, *, budget_ms: int = BUDGET_MS) -> str:
        """The page's DOM once its scripts ran, as HTML text."""
        return self._run(url, f"--virtual-time-budget={budget_ms}", "--dump-dom").stdout

    def screenshot(self, url: str, path: Path, *, width: int = 1280, height: int = 1600,
                   budget_ms: int = BUDGET_MS) -> Path:
        self._run(url, f"--virtual-time-budget={budget_ms}", f"--window-size={width},{height}",
                  f"--screenshot={path}")
        assert path.is_file(), f"chromium wrote no screenshot to {path}"
        return path

    def print_pdf(self, url: str, path: Path) -> Path:
        self._run(url, "--no-pdf-header-footer", f"--print-to-pdf={path}")
        assert path.is_file(), f"chromium wrote no PDF to {path}"
        return path

    def _run(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        profile = self.root / f"chromium-profile-{next(self._profiles)}"
        done = subprocess.run([str(self.binary), *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=LIMIT_S, check=False)
        assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-2000:]}"
        return done


def open_browser(tmp_path: Path) -> Browser:
    return Browser(find_chromium(), tmp_path)


def pdf_pages(path: Path) -> int:
    """Pages of a PDF Chromium wrote (Skia writes each page object uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


@dataclass
class Page:
    """A dumped DOM read back: its visible text, and every element with its attributes, in order."""

    text: str = ""
    elements: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag]


def parse(dom: str) -> Page:
    """The text a person reads (not the text of <script> or <style>) and the elements of a DOM."""
    page = Page()
    chunks: list[str] = []
    hidden: list[str] = []

    class _Reader(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            page.elements.append((tag, {k: v or "" for k, v in attrs}))
            if tag in ("script", "style"):
                hidden.append(tag)

        def handle_endtag(self, tag: str) -> None:
            if hidden and hidden[-1] == tag:
                hidden.pop()

        def handle_data(self, data: str) -> None:
            if not hidden:
                chunks.append(data)

    reader = _Reader(convert_charrefs=True)
    reader.feed(dom)
    reader.close()
    page.text = " ".join(" ".join(chunks).split())
    return page
