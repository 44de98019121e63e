"""The documentation lives in the repository and its pointers resolve.

- No tracked file cites the reference documents this code was first written against, which are
  not in the repository (a reader could not follow the pointer): the old wire-contract and
  model-input notes, a design page outside `docs/`, or a bare "contract" section number. Their
  content now lives in docs/contract.md, docs/model-inputs.md and docs/design.md. (The
  patterns are written in pieces below so that this file does not match them itself.)
- Every relative link in README.md and docs/*.md reaches an existing file, and an existing
  heading when it names an anchor (GitHub's heading slugs).
- Every `docs/<name>.md §N` citation anywhere names an existing numbered section of that page;
  a bare `§N` in a file that cites exactly one page refers to that page (in docs/*.md, to the
  page itself) and must exist there too; a file citing several pages must not use bare `§N`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_BYTES = 2_000_000  # larger tracked files are data, not prose

# Written in pieces so that this file does not match its own patterns.
_PRIVATE = re.compile(
    "|".join(
        (
            r"api" + r"-contract",
            r"vace" + r"-inputs",
            r"\bcontract" + r" §",
        )
    ),
    re.IGNORECASE,
)
_DESIGN = re.compile(r"(?<![\w/.-])" + r"design" + r"\.md")  # the design page without docs/
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
_SECTION = r"§(\d+(?:\.\d+)*)"
# `docs/contract.md §3`, `contract.md §5.1-§5.3`, `model-inputs.md §1, §3`
_CITATION = re.compile(
    r"(?:docs/)?([a-z][a-z0-9-]*)\.md " + _SECTION + r"((?:(?:, |-|–| and )" + _SECTION + r")*)"
)
_ANY_SECTION = re.compile(_SECTION)
_DOC_MENTION = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)\b")


def tracked_texts() -> Iterator[tuple[str, str]]:
    """(path relative to the root, text) of every tracked UTF-8 text file."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > MAX_BYTES:
            continue
        try:
            yield name, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed (hyphens
    and underscores kept), spaces turned into hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


@cache
def sections(name: str) -> frozenset[str]:
    """The section numbers ("5", "5.1") of docs/<name>.md; empty when there is no such page."""
    page = DOCS / f"{name}.md"
    if not page.is_file():
        return frozenset()
    numbers = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading and (number := _NUMBERED.match(heading.group(2))):
            numbers.add(number.group(1))
    return frozenset(numbers)


def test_no_citation_of_the_private_reference_documents() -> None:
    found = []
    for name, text in tracked_texts():
        # docs/*.md link their neighbours by bare name; everywhere else it is docs/design.md
        in_docs = name.startswith("docs/")
        for number, line in enumerate(text.splitlines(), start=1):
            if _PRIVATE.search(line) or (not in_docs and _DESIGN.search(line)):
                found.append(f"{name}:{number}: {line.strip()}")
    hint = "cite docs/contract.md, docs/model-inputs.md or docs/design.md instead:\n"
    assert not found, hint + "\n".join(found)


def test_relative_links_resolve() -> None:
    broken = []
    for page in markdown_pages():
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in _LINK.findall(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def _cited_sections(text: str) -> tuple[list[tuple[str, str]], str]:
    """(page name, section) per explicit citation, and the text with those citations removed."""
    cited = []
    for match in _CITATION.finditer(text):
        name = match.group(1)
        cited.append((name, match.group(2)))
        cited.extend((name, extra) for extra in _ANY_SECTION.findall(match.group(3)))
    return cited, _CITATION.sub("", text)


def test_section_citations_resolve() -> None:
    broken = []
    for name, text in tracked_texts():
        if "§" not in text:
            continue
        cited, rest = _cited_sections(text)
        own = Path(name).stem if name.startswith("docs/") and name.endswith(".md") else None
        for page, number in cited:
            if number not in sections(page):
                broken.append(f"{name}: docs/{page}.md §{number} does not exist")
        bare = _ANY_SECTION.findall(rest)
        if not bare:
            continue
        pages = {own} if own else {page for page, _ in cited}
        if len(pages) != 1:
            broken.append(
                f"{name}: bare §{bare[0]} but the file cites {sorted(pages) or 'no page'}: "
                "write docs/<page>.md §N"
            )
            continue
        (page,) = pages
        broken.extend(
            f"{name}: bare §{number} (docs/{page}.md) does not exist"
            for number in bare
            if number not in sections(page)
        )
    assert not broken, "\n".join(broken)


def test_mentioned_doc_pages_exist() -> None:
    missing = [
        f"{name}: docs/{page}"
        for name, text in tracked_texts()
        for page in set(_DOC_MENTION.findall(text))
        if not (DOCS / page).is_file()
    ]
    assert not missing, "\n".join(missing)


def test_slug_follows_github() -> None:
    assert slug("12. The result video") == "12-the-result-video"
    assert slug("2. `image_reference`") == "2-image_reference"
    assert slug("1. The model's three inputs") == "1-the-models-three-inputs"
    assert slug("Media and webhook addresses") == "media-and-webhook-addresses"
