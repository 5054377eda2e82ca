"""The README and docs/ render as written: every code fence closed, every relative link
and image resolving to a file that exists and to the heading it names, every page
reachable from the README.

A fence left open turns the rest of a page into code (the README once showed "CI runs..."
and "Known limits" that way); a page moved or a heading renamed breaks the links to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
PAGES = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])

FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CODE_SPAN = re.compile(r"(`+).+?\1")
# [text](target) and ![alt](target), with an optional "title"; [label]: target.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\s(?:href|src)=\"([^\"]*)\"")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:...


def ids(pages: list[Path]) -> list[str]:
    return [str(page.relative_to(ROOT)) for page in pages]


def text_of(page: Path) -> str:
    return COMMENT.sub("", page.read_text(encoding="utf-8"))


def prose_lines(page: Path) -> Iterator[tuple[int, str]]:
    """The page's lines outside fenced code, numbered from 1 (HTML comments removed:
    the cog blocks' own code is no part of the page)."""
    fence: str | None = None
    for number, line in enumerate(text_of(page).splitlines(), 1):
        found = FENCE.match(line)
        if fence is None:
            if found:
                fence = found.group(1)
            else:
                yield number, line
        elif (
            found
            and found.group(1)[0] == fence[0]
            and len(found.group(1)) >= len(fence)
            and not found.group(2).strip()
        ):
            fence = None


def unclosed_fences(page: Path) -> list[str]:
    """Where a fence opens and never closes, or a second block opens inside one (a
    fence with an info string cannot close a block: the one before it was left open)."""
    problems: list[str] = []
    fence: tuple[int, str] | None = None
    for number, line in enumerate(text_of(page).splitlines(), 1):
        found = FENCE.match(line)
        if not found:
            continue
        marker, info = found.group(1), found.group(2).strip()
        if fence is None:
            fence = (number, marker)
        elif marker[0] == fence[1][0] and len(marker) >= len(fence[1]):
            if info:
                problems.append(f"line {number}: a block opens inside the one of line {fence[0]}")
            else:
                fence = None
    if fence is not None:
        problems.append(f"line {fence[0]}: this fence is never closed")
    return problems


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped,
    spaces as -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of the page's headings; a repeated heading's get -1, -2..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(page):
        found = HEADING.match(line)
        if found:
            base = slug(found.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(page: Path) -> Iterator[tuple[int, str]]:
    """Every link and image target in the page's prose, code spans left out."""
    for number, line in prose_lines(page):
        prose = CODE_SPAN.sub("", line)
        for pattern in (INLINE_LINK, DEFINITION, HTML_TARGET):
            for found in pattern.finditer(prose):
                yield number, found.group(1)


def resolve(page: Path, target: str) -> Path:
    path = target.split("#", 1)[0]
    return (page.parent / path).resolve() if path else page


def broken_links(page: Path) -> list[str]:
    problems: list[str] = []
    for number, target in links(page):
        if not target:
            problems.append(f"line {number}: an empty link")
            continue
        if EXTERNAL.match(target):
            continue
        where = resolve(page, target)
        if not where.exists():
            problems.append(f"line {number}: {target}: no such file")
        elif "#" in target and where.suffix == ".md":
            anchor = target.split("#", 1)[1]
            if anchor not in anchors(where):
                problems.append(f"line {number}: {target}: no heading #{anchor} there")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_code_fence_is_closed(page: Path) -> None:
    assert unclosed_fences(page) == []


@pytest.mark.parametrize("page", PAGES, ids=ids(PAGES))
def test_every_relative_link_and_image_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_page_can_be_reached_from_the_readme() -> None:
    reached, todo = {README.resolve()}, [README]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            where = resolve(page, target)
            if EXTERNAL.match(target) or where in reached or where.suffix != ".md":
                continue
            if where.is_file():
                reached.add(where)
                todo.append(where)
    assert {page.resolve() for page in PAGES} - reached == set()


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """The README's old fault (a block closed twice leaves the next one open), a block
    opened inside another, a missing file, a missing heading, and what is no link."""
    (tmp_path / "there.md").write_text("# A `khpl-migrate sync` heading\n\n## Twice\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n```\ncode\n```\n```\n\nCI runs...\n\nKnown limits:\n- one\n")
    assert unclosed_fences(page) == ["line 6: this fence is never closed"]
    page.write_text("- in a list:\n\n  ```\n  indented\n  ```\n")
    assert unclosed_fences(page) == []
    page.write_text("```\nleft open\n\n```bash\nnext\n```\n")
    assert unclosed_fences(page) == ["line 4: a block opens inside the one of line 1"]
    page.write_text(
        "[ok](there.md) [ok](there.md#a-khpl-migrate-sync-heading) [ok](there.md#twice-1)\n"
        "[ok](#page) ![image](missing.png) [gone](gone.md) [bad](there.md#nowhere)\n"
        "`[code](not-a-link.md)` [web](https://example.com/x.md)\n\n"
        "# Page\n\n```\n[in code](not-a-link.md)\n```\n"
    )
    assert broken_links(page) == [
        "line 2: missing.png: no such file",
        "line 2: gone.md: no such file",
        "line 2: there.md#nowhere: no heading #nowhere there",
    ]
