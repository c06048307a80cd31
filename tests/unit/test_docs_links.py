"""Every relative link in README.md and docs/ leads somewhere: an existing file or folder,
and for a Markdown target with a #fragment, an existing heading (GitHub's anchors)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_PARSER = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Link:
    """A link as written, and where: the page and the line."""

    page: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}: ({self.target})"


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def _inline_tokens(tokens: list[Token]) -> list[tuple[Token, int]]:
    """Every inline token with the (1-based) line of its block."""
    found: list[tuple[Token, int]] = []
    for token in tokens:
        if token.type == "inline":
            found.append((token, (token.map[0] + 1) if token.map else 0))
    return found


def links_of(page: Path) -> list[Link]:
    """The links and images of a page, code spans and code blocks excluded."""
    links: list[Link] = []
    for inline, line in _inline_tokens(_PARSER.parse(page.read_text(encoding="utf-8"))):
        for child in inline.children or []:
            if child.type == "link_open":
                links.append(Link(page, line, str(child.attrs.get("href", ""))))
            elif child.type == "image":
                links.append(Link(page, line, str(child.attrs.get("src", ""))))
    return links


def github_anchor(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation removed, spaces to dashes."""
    lowered = text.strip().lower()
    kept = "".join(ch for ch in lowered if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


@cache
def anchors_of(page: Path) -> frozenset[str]:
    """The anchors of a page's headings, with GitHub's -1, -2 suffixes for repeats."""
    tokens = _PARSER.parse(page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        inline = tokens[index + 1]
        text = "".join(
            child.content
            for child in inline.children or []
            if child.type in ("text", "code_inline", "html_inline")
        )
        base = github_anchor(re.sub(r"<[^>]+>", "", text))
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return frozenset(anchors)


def problem_of(link: Link) -> str | None:
    """Why a link is broken, or None when it is fine (or not ours to check)."""
    parts = urlsplit(link.target)
    if parts.scheme or link.target.startswith("//"):
        return None  # http(s), mailto: not checked here
    path, fragment = unquote(parts.path), unquote(parts.fragment)
    target = (link.page.parent / path).resolve() if path else link.page
    if ROOT not in (target, *target.parents):
        return "leaves the repository"
    relative = target.relative_to(ROOT).as_posix()
    if not target.exists():
        return f"{relative} does not exist"
    if fragment and target.suffix == ".md" and fragment not in anchors_of(target):
        return f"{relative} has no heading with anchor #{fragment}"
    return None


def all_links() -> list[Link]:
    return [link for page in markdown_pages() for link in links_of(page)]


def test_the_pages_have_links_to_check():
    links = all_links()
    assert len(links) > 50, "the Markdown parser found almost no links; is it working?"
    assert any(link.target.startswith("#") for link in links)


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_somewhere(page: Path):
    broken = [f"{link} {problem}" for link in links_of(page) if (problem := problem_of(link))]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_docs_index_links_every_page():
    index = DOCS / "README.md"
    linked = {
        (index.parent / urlsplit(link.target).path).resolve()
        for link in links_of(index)
        if not urlsplit(link.target).scheme
    }
    # A `*.draft.md` is someone's page in progress; it needs a link once it is renamed.
    pages = {p.resolve() for p in DOCS.rglob("*.md") if not p.name.endswith(".draft.md")}
    pages -= {index.resolve()}
    missing = sorted(page.relative_to(ROOT).as_posix() for page in pages - linked)
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"
