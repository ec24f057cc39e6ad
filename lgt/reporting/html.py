"""report.html: report.md as one self-contained page, with an LGT run's change log folded by round.

The page is the markdown lgt already renders (report.md, and changelog.md
for an LGT run) put through a small converter that knows the few shapes
those files use: headings, paragraphs, lists, tables, code blocks, emphasis,
links to files of the folder, and whole-line images, which it embeds as
data: URIs. So the page says what report.md says, opens offline (no
external CSS, JS or font), and survives being mailed as one file.

Every character of text is escaped before any markup is added, and markup
comes only from the converter, never from the text: an LLM's reason that
reads `<script>` shows as those characters. The page's Content-Security-Policy
also forbids every script and every fetch but its own data: images, so even
a converter bug could not run one. A print stylesheet unfolds the rounds.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from pathlib import Path

from lgt.direction import is_better
from lgt.reporting import changelog
from lgt.reporting.store import Run
from lgt.reporting.writing import write_whole

HTML_REPORT = "report.html"
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<file>[^)\s]+)\)$")
_BULLET = re.compile(r"^[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\d+\.\s+(.*)$")
_RULE = re.compile(r"^\s*:?-{3,}:?\s*$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"(`[^`]+`)")
_EM = re.compile(r"(?<![\w*])_(?=\S)([^_*]+?)(?<=\S)_(?!\w)")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_LINK = re.compile(r"\[([^\[\]]+)\]\(([\w][\w.-]*)\)")
_ROUND = re.compile(r"^Round \S+: trial #(\d+)\b")
_PNG = b"\x89PNG\r\n\x1a\n"
_BACKSLASH = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark's backslash escapes: any ASCII punctuation
_HELD = "\ue000"  # a private-use character marks an escaped character held aside while markup is found
_HELD_AT = re.compile(f"{_HELD}(\\d+){_HELD}")

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1b1f23;
       background: #fff; margin: 0; }
main { max-width: 68rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.7rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; border-bottom: 1px solid #eaeef2; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) td { background: #fafbfc; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; background: #f6f8fa;
            border-radius: 4px; }
code { padding: .1em .3em; }
pre { padding: .8rem; overflow-x: auto; }
pre code { padding: 0; }
figure { margin: 1rem 0; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption, .hint, .missing { color: #57606a; font-size: .88rem; }
details.round { border: 1px solid #d0d7de; border-radius: 6px; margin: .5rem 0; padding: 0 .9rem; }
details.round > summary { cursor: pointer; padding: .5rem 0; font-weight: 600; }
details.round[open] > summary { border-bottom: 1px solid #eaeef2; margin-bottom: .5rem; }
.best { color: #1a7f37; }
.failed { color: #cf222e; }
"""

# Its own <style> element, so the page's test can print the page without it and see the difference.
_PRINT_STYLE = """
@page { margin: 1.5cm; }
body { font-size: 10.5pt; }
main { max-width: none; padding: 0; }
details::details-content { content-visibility: visible; display: block; }
details.round { border: none; padding: 0; }
details.round > summary { list-style: none; font-size: 1.05rem; margin-top: 1rem; border-bottom: 1px solid #999; }
details.round > summary::-webkit-details-marker { display: none; }
table { display: table; }
figure, img, tr { break-inside: avoid; }
a { color: inherit; text-decoration: none; }
.hint { display: none; }
"""


def run_html(run: Run, report_md: str, folder: Path, changelog_md: str | None = None) -> str:
    """A run's report.html: report.md, then (for an LGT run) its change log with one fold per round."""
    body = markdown_to_html(report_md, folder)
    if changelog_md is not None:
        body += f'\n<section id="changelog">\n{changelog_html(changelog_md, run, folder)}\n</section>'
    return page(run.name, body)


def bench_html(report_md: str, folder: Path, *, title: str) -> str:
    """A bench's report.html: its report.md (tables and figures) as one page."""
    return page(title, markdown_to_html(report_md, folder))


def write(path: Path, text: str) -> Path:
    """Write whole, so a browser that reloads mid-write never shows half a page."""
    return write_whole(path, text)


def page(title: str, body: str) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="lgt">', f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>", f'<style media="print">{_PRINT_STYLE}</style>', "</head>",
        "<body>", "<main>", body, "</main>", "</body>", "</html>", ""])


def changelog_html(text: str, run: Run, folder: Path) -> str:
    """changelog.md with each round in a <details> whose summary says its result; the rest stays open."""
    outcome = _outcomes(run)
    head, sections = _sections(text.splitlines())
    parts = [markdown_to_html("\n".join(head), folder, shift=1),
             ('<p class="hint">Each round is folded: open one to read its proposal, reasons, evidence and '
              "verdict. Printing unfolds them all.</p>")]
    for heading, lines in sections:
        body = markdown_to_html("\n".join(lines), folder, shift=1)
        found = _ROUND.match(heading)
        if found is None:
            parts.append(f"<h3>{inline(heading, folder)}</h3>\n{body}")
            continue
        number = int(found[1])
        note = outcome.get(number)
        extra = "" if note is None else f' <span class="{note[1]}">({html.escape(note[0])})</span>'
        parts.append(f'<details class="round" id="trial-{number}">\n<summary>{inline(heading, folder)}{extra}'
                     f"</summary>\n{body}\n</details>")
    return "\n".join(parts)


def _sections(lines: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The lines before the first `## ` heading, then each `## ` heading with the lines under it."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("## "):
            sections.append((line[3:].strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    return head, sections


def _outcomes(run: Run) -> dict[int, tuple[str, str]]:
    """Each trial's result in a few words, and whether it beat every trial before it (computed, not the verdict)."""
    out: dict[int, tuple[str, str]] = {}
    running: float | None = None
    for record in changelog.records(run):
        if record["status"] != "complete" or record["val_metric"] is None:
            out[record["number"]] = ("failed", "failed")
            continue
        value = float(record["val_metric"])
        improved = is_better(value, running, run.direction)
        running = value if improved else running
        out[record["number"]] = (f"validation {run.metric} {value:.4f}{', a new best' if improved else ''}",
                                 "best" if improved else "")
    return out


# --- markdown ----------------------------------------------------------------------------------------------------

def markdown_to_html(text: str, folder: Path, *, shift: int = 0) -> str:
    """The markdown lgt writes, as HTML; images are files of `folder`, embedded; headings sink by `shift` levels."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:end]))}</code></pre>")
            i = end + 1
        elif heading := _HEADING.match(line):
            level = min(6, len(heading[1]) + shift)
            out.append(f"<h{level}>{inline(heading[2].strip(), folder)}</h{level}>")
            i += 1
        else:
            kind, block, i = _block(lines, i)
            out.append(_RENDER[kind](block, folder))
    return "\n".join(out)


def _block(lines: list[str], start: int) -> tuple[str, list[str], int]:
    """The kind of block starting at `start`, its lines, and where the next block starts."""
    kind = _kind(lines[start])
    end = start + 1
    while end < len(lines) and lines[end].strip() and _kind(lines[end]) == kind:
        end += 1
    return kind, lines[start:end], end


def _kind(line: str) -> str:
    if line.startswith("|"):
        return "table"
    if _IMAGE.match(line.strip()):
        return "images"
    if _BULLET.match(line):
        return "bullets"
    if _NUMBERED.match(line):
        return "numbered"
    if _HEADING.match(line) or line.startswith("```"):
        return "other"
    return "paragraph"


def _paragraph(lines: list[str], folder: Path) -> str:
    return f"<p>{inline(' '.join(line.strip() for line in lines), folder)}</p>"


def _list(tag: str, pattern: re.Pattern[str]) -> Callable[[list[str], Path], str]:
    def render(lines: list[str], folder: Path) -> str:
        items = []
        for line in lines:
            found = pattern.match(line)
            items.append(f"<li>{inline(found[1] if found else line, folder)}</li>")
        return f"<{tag}>\n" + "\n".join(items) + f"\n</{tag}>"
    return render


def _table(lines: list[str], folder: Path) -> str:
    rows = [_cells(line) for line in lines]
    head: list[str] | None = None
    if len(rows) > 1 and rows[1] and all(_RULE.match(c) for c in rows[1]):
        head, rows = rows[0], rows[2:]
    parts = ["<table>"]
    if head is not None and any(c.strip() for c in head):
        parts.append("<thead><tr>" + "".join(f"<th>{inline(c, folder)}</th>" for c in head) + "</tr></thead>")
    parts.append("<tbody>")
    parts += ["<tr>" + "".join(f"<td>{inline(c, folder)}</td>" for c in row) + "</tr>" for row in rows]
    parts.append("</tbody></table>")
    return "\n".join(parts)


def _cells(line: str) -> list[str]:
    """A table row's cells; `\\|` is a bar inside a cell."""
    body = line.strip()
    body = body.removeprefix("|")
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(body)]


def _images(lines: list[str], folder: Path) -> str:
    """Whole-line images: a PNG of the folder is embedded; anything else is named, never fetched."""
    out = []
    for line in lines:
        found = _IMAGE.match(line.strip())
        assert found is not None
        alt, name = found["alt"], found["file"]
        data = _png(folder, name)
        if data is None:
            out.append(f'<p class="missing">[{html.escape(alt)}: {html.escape(name)} is not in this folder]</p>')
            continue
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        out.append(f'<figure><img src="{uri}" alt="{html.escape(alt)}" title="{html.escape(name)}">'
                   f"<figcaption>{html.escape(name)}</figcaption></figure>")
    return "\n".join(out)


def _png(folder: Path, name: str) -> bytes | None:
    """The bytes of a PNG file directly in `folder` (no other path is ever read), or None."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = folder / name
    if not path.is_file():
        return None
    data = path.read_bytes()
    return data if data.startswith(_PNG) else None


_RENDER: dict[str, Callable[[list[str], Path], str]] = {
    "paragraph": _paragraph, "other": _paragraph, "table": _table, "images": _images,
    "bullets": _list("ul", _BULLET), "numbered": _list("ol", _NUMBERED),
}


def inline(text: str, folder: Path) -> str:
    """One line's text as HTML: escaped first, then code spans, emphasis and links to files of `folder`.

    A backslash before punctuation (how `reporting.text.md` writes a file
    name's `*`, `[` or `<`) makes that character plain text, as in
    CommonMark: it is held aside before any markup is looked for, and put
    back, escaped, at the end.
    """
    held: list[str] = []

    def hold(found: re.Match[str]) -> str:
        held.append(found[1])
        return f"{_HELD}{len(held) - 1}{_HELD}"

    text = _BACKSLASH.sub(hold, text.replace(_HELD, ""))
    out = []
    for part in _CODE_SPAN.split(text):
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            code = _HELD_AT.sub(lambda m: "\\" + held[int(m[1])], part[1:-1])  # no escapes inside code
            out.append(f"<code>{html.escape(code)}</code>")
            continue
        escaped = html.escape(part)
        escaped = _EM.sub(r"<em>\1</em>", escaped)
        escaped = _STRONG.sub(r"<strong>\1</strong>", escaped)
        out.append(_LINK.sub(lambda m: _link(m, folder), escaped))
    return _HELD_AT.sub(lambda m: html.escape(held[int(m[1])]), "".join(out))


def _link(found: re.Match[str], folder: Path) -> str:
    """A link to a file beside the report (report.md's "More:" line); any other link stays text."""
    label, target = found[1], found[2]
    if (folder / target).is_file():
        return f'<a href="{target}">{label}</a>'
    return found[0]
