"""Every `ARCHITECTURE.md §N` cited in the code and the docs is a heading of
docs/ARCHITECTURE.md, and nothing cites the DESIGN.md that is not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "docs" / "ARCHITECTURE.md"
CITE = re.compile(r"ARCHITECTURE\.md\)?((?:,?\s+§\d+)+)")


def sources() -> list[Path]:
    files = [*ROOT.glob("tui_supervisor/**/*.py"), *ROOT.glob("tests/**/*.py"),
             *ROOT.glob("bench/*.py"), ROOT / "README.md", *ROOT.glob("docs/*.md")]
    return sorted(f for f in files if f.is_file())


def test_every_cited_section_is_a_heading() -> None:
    headings = set(re.findall(r"^## §(\d+) ", ARCH.read_text(), re.M))
    assert headings, "docs/ARCHITECTURE.md has no `## §N` headings"
    cited: dict[str, set[str]] = {}
    for f in sources():
        for m in CITE.finditer(f.read_text()):
            for n in re.findall(r"§(\d+)", m.group(1)):
                cited.setdefault(n, set()).add(str(f.relative_to(ROOT)))
    assert len(cited) >= 5, cited  # the citations are found at all
    missing = {n: files for n, files in cited.items() if n not in headings}
    assert not missing, f"cited sections missing from docs/ARCHITECTURE.md: {missing}"


def test_no_citation_of_a_missing_design_file() -> None:
    here = Path(__file__).resolve()
    stale = [str(f.relative_to(ROOT)) for f in sources()
             if f != here and re.search(r"DESIGN\.md|RELOAD-NOTES", f.read_text())]
    assert not stale, f"cite docs/ARCHITECTURE.md instead: {stale}"
