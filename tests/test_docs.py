"""The documentation holds together: every relative link in README.md and docs/*.md points at a file that
exists (and an ``#anchor`` at a heading of it), and README.md stays short enough to read in five minutes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 180  # the README is for people; depth lives in docs/

# [text](target) and ![alt](target); the target ends at whitespace or ")" (an optional "title" is ignored).
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str, strip_code: bool = True) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code removed unless ``strip_code`` is
    False: a link-like string in code (``a[i](x)``) is not a link."""
    out, in_fence = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            out.append((n, INLINE_CODE.sub("", line) if strip_code else line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces become hyphens."""
    text = re.sub(r"[*`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, repeated headings numbered as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8"), strip_code=False):
        if m := HEADING.match(line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of ``path`` that does not resolve, as 'file:line: target (why)'."""
    bad = []
    for n, line in prose_lines(path.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ... not checked here
                continue
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.name}:{n}: {target}"
            if not dest.is_relative_to(root.resolve()):
                bad.append(f"{where} (outside the repository)")
            elif not dest.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where} (no heading with that anchor)")
    return bad


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_docs_folder_exists_and_readme_links_into_it():
    assert len(markdown_files()) > 1, "docs/*.md is missing"
    linked = {t for _, line in prose_lines((ROOT / "README.md").read_text(encoding="utf-8"))
              for t in LINK.findall(line)}
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert any(t.split("#")[0] == f"docs/{doc.name}" for t in linked), f"README.md never links {doc.name}"


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n < README_MAX_LINES, f"README.md has {n} lines; move depth into docs/"


def test_the_checker_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# A page\n\n## Joining and queueing\n\n## Notes\n\n## Notes\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Title\n\n"
        "[ok](docs/there.md) [ok anchor](docs/there.md#joining-and-queueing) [own](#title) "
        "[second notes](docs/there.md#notes-1) [web](https://example.org/x.md)\n"
        "`[in code](missing.md)`\n```\n[in a fence](missing.md)\n```\n"
        "[gone](docs/missing.md)\n"
        "![picture](assets/none.png)\n"
        "[bad anchor](docs/there.md#no-such-heading)\n"
        "[bad own anchor](#nowhere)\n"
        "[escape](../../etc/passwd)\n"
    )
    bad = broken_links(page, root=tmp_path)
    assert [b.split(": ", 1)[1] for b in bad] == [
        "docs/missing.md (no such file)",
        "assets/none.png (no such file)",
        "docs/there.md#no-such-heading (no heading with that anchor)",
        "#nowhere (no heading with that anchor)",
        "../../etc/passwd (outside the repository)",
    ]


def test_slug_matches_githubs_anchors():
    assert slug("A teacher's five minutes") == "a-teachers-five-minutes"
    assert slug("A page that costs (almost) nothing") == "a-page-that-costs-almost-nothing"
    assert slug("Uncertainty: what a verdict needs") == "uncertainty-what-a-verdict-needs"
    assert slug("What the pages share: `tl_ui/`") == "what-the-pages-share-tl_ui"
