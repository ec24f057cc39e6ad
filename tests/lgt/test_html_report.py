"""report.html: one self-contained page per run folder and bench folder, opened in headless Chromium.

A real LGT run on iris (only the LLM is scripted, and every text it writes
carries a <script> tag) and a tiny real bench (LGT and TPE on iris) write
their folders; the pages are loaded from file:// with no network at all.
"""

from __future__ import annotations

import base64
import re
from io import BytesIO
from pathlib import Path

import pytest
from browser import Browser, open_browser, parse, pdf_pages
from hostile_llm import HostileLLM
from PIL import Image
from scripted_llm import SECRET, ScriptedLLM

from lgt.bench import BenchRequest, run_bench
from lgt.reporting import rebuild
from lgt.reporting.html import markdown_to_html
from lgt.tune import TuneRequest, run_tune

TRIALS = 4
REASON = "the curve still climbs <script>alert(1)</script> at the last epoch"
_TABLE_RULE = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")
_IMAGE_LINE = re.compile(r"^!\[[^\]]*\]\([^)]+\.png\)$")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("html") / "results"
    results.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LGT_OFFLINE", "1")
        mp.setenv("LGT_RESULTS_DIR", str(results))
        mp.setenv("OPENAI_API_KEY", SECRET)
        summary = run_tune(TuneRequest(target="iris", trials=TRIALS, seed=2, storage=f"sqlite:///{results / 's.db'}",
                                       llm_base_url="http://llm.test/v1", optimize_every=2),
                           client_factory=HostileLLM(lambda request: REASON, value=0.05).factory())
    return Path(summary["run_dir"])


@pytest.fixture(scope="module")
def bench_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("html-bench") / "results"
    results.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LGT_OFFLINE", "1")
        mp.setenv("LGT_RESULTS_DIR", str(results))
        mp.setenv("OPENAI_API_KEY", SECRET)
        result = run_bench(BenchRequest(targets=["iris"], methods=["lgt", "tpe"], trials=3, seeds=[1],
                                        storage=f"sqlite:///{results / 's.db'}", llm_base_url="http://llm.test/v1",
                                        optimize_every=2), client_factory=ScriptedLLM().factory())
    return Path(result["bench_dir"])


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return open_browser(tmp_path)


def _markdown(folder: Path, *names: str) -> list[str]:
    return [line for name in names for line in (folder / name).read_text().splitlines()]


def _check_images(dom: str, folder: Path, markdown: list[str]) -> int:
    """Every image of the page is one of the folder's PNGs, embedded whole; as many as the markdown shows."""
    images = parse(dom).all("img")
    assert len(images) == sum(bool(_IMAGE_LINE.match(line)) for line in markdown) > 0
    for image in images:
        head, _, data = image["src"].partition(",")
        assert head == "data:image/png;base64", head[:80]
        png = base64.b64decode(data, validate=True)
        assert png == (folder / image["title"]).read_bytes()
        with Image.open(BytesIO(png)) as decoded:
            decoded.verify()
            assert decoded.format == "PNG" and decoded.width > 400
    return len(images)


def _offline(dom: str) -> None:
    """Nothing the page would fetch: no script, no stylesheet link, no source but data: URIs, links only to files."""
    page = parse(dom)
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert all(attrs["src"].startswith("data:") for tag, attrs in page.elements if "src" in attrs)
    assert all(re.fullmatch(r"[\w.-]+", attrs["href"]) for attrs in page.all("a"))


def _not_blank(path: Path) -> None:
    with Image.open(path) as shot:
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, f"{path} looks blank"


def test_a_run_report_is_one_offline_page_with_its_tables_plots_and_a_fold_per_round(
        run_folder: Path, browser: Browser, tmp_path: Path) -> None:
    page_file = run_folder / "report.html"
    dom = browser.dump_dom(page_file.as_uri())
    markdown = _markdown(run_folder, "report.md", "changelog.md")
    _offline(dom)
    assert _check_images(dom, run_folder, markdown) == 2  # convergence and curves; no schedule without --adapt

    page = parse(dom)
    assert len(page.all("table")) == sum(bool(_TABLE_RULE.match(line)) for line in markdown)
    assert "best validation accuracy" in page.text and "its test accuracy" in page.text
    assert "knob from to reason evidence (computed)" in page.text  # a change log table's header row
    folds = page.all("details")
    assert len(folds) == TRIALS and all("open" not in fold for fold in folds)
    assert [fold["id"] for fold in folds] == [f"trial-{n}" for n in range(TRIALS)]
    for n in range(1, TRIALS + 1):
        assert f"Round {n}: trial #{n - 1}" in page.text
    assert "Outcome" in page.text and "Path of improvements" in page.text
    _not_blank(browser.screenshot(page_file.as_uri(), tmp_path / "run-report.png"))


def test_llm_text_in_the_page_is_text_never_markup(run_folder: Path, browser: Browser) -> None:
    source = (run_folder / "report.html").read_text()
    assert "<script" not in source and "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    page = parse(browser.dump_dom((run_folder / "report.html").as_uri()))
    assert REASON in page.text and not page.all("script")


@pytest.mark.parametrize("hostile", [
    "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", '"><svg onload=alert(1)>',
    "[click](javascript:alert(1))", "![x](http://evil.example/x.png)", "**<b>bold</b>** _<i>x</i>_",
    "`</code><script>alert(1)</script>`",
])
def test_the_converter_escapes_every_tag_and_makes_no_link_out_of_text(hostile: str, tmp_path: Path) -> None:
    markdown = "\n".join(["| knob | reason |", "| --- | --- |", f"| lr | {hostile} |", "", f"**Why:** {hostile}", "",
                          f"- {hostile}", "", hostile, ""])
    out = markdown_to_html(markdown, tmp_path)
    tags = set(re.findall(r"</?([a-zA-Z0-9]+)", out))
    assert tags <= {"table", "thead", "tbody", "tr", "th", "td", "p", "strong", "em", "ul", "li", "code"}, tags
    attributes = set(re.findall(r"<[a-z]+\s([^>]*)>", out))
    assert attributes <= {'class="missing"'}, attributes  # an image that is no file of the folder is only named
    if "<" in hostile:
        assert "&lt;" in out


def test_printing_unfolds_every_round(run_folder: Path, browser: Browser, tmp_path: Path) -> None:
    source = (run_folder / "report.html").read_text()
    variants = {"as written": source,
                "without the print stylesheet": re.sub(r'<style media="print">.*?</style>', "", source,
                                                       flags=re.DOTALL),
                "every round open": source.replace('<details class="round"', '<details open class="round"')}
    pages = {}
    for name, text in variants.items():
        page = tmp_path / f"{name.replace(' ', '-')}.html"
        page.write_text(text)
        pages[name] = pdf_pages(browser.print_pdf(page.as_uri(), tmp_path / f"{page.stem}.pdf"))
    assert pages["as written"] == pages["every round open"] > pages["without the print stylesheet"], pages


def test_a_bench_report_is_one_offline_page_with_its_tables_and_plots(bench_folder: Path, browser: Browser,
                                                                    tmp_path: Path) -> None:
    page_file = bench_folder / "report.html"
    dom = browser.dump_dom(page_file.as_uri())
    _offline(dom)
    markdown = _markdown(bench_folder, "report.md")
    assert _check_images(dom, bench_folder, markdown) == 3  # convergence, curves, LLM share
    page = parse(dom)
    # the result, the search cost, the paired differences with TPE, and where the Advisor's departures were shown
    assert len(page.all("table")) == sum(bool(_TABLE_RULE.match(line)) for line in markdown) == 4
    for heading in ("Test metric of the chosen configuration", "Search cost", "Paired with TPE, seed by seed",
                    "Where the Advisor's departures were shown", "Convergence", "Learning curves"):
        assert heading in page.text
    rows = [attrs for tag, attrs in page.elements if tag == "tr"]
    assert len(rows) == 3 * (1 + 2) + (1 + 1)  # three tables: a header and the LGT and TPE rows; then LGT's
    assert "LGT" in page.text and "TPE" in page.text
    _not_blank(browser.screenshot(page_file.as_uri(), tmp_path / "bench-report.png"))


def test_lgt_report_writes_report_html_again(run_folder: Path, bench_folder: Path) -> None:
    for folder, storage in ((run_folder, run_folder.parent / "s.db"), (bench_folder, bench_folder.parents[1] / "s.db")):
        before = (folder / "report.html").read_text()
        (folder / "report.html").unlink()
        rebuild(folder, f"sqlite:///{storage}")
        assert (folder / "report.html").read_text() == before
