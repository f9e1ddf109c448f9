"""Every page of the user guide runs as written: one test per page of ``README.md`` and ``docs/``.

New pages are picked up automatically; the rules they follow are in ``tests/docs/harness.py``
(and ``docs/contributing.md``). Run one page with ``pytest tests/docs -k nir.md``.
"""

import re

import pytest

from tests.docs.harness import PROJECT, _Skip, discover_pages, relative, run_page

PAGES = discover_pages()


@pytest.mark.parametrize("page", PAGES, ids=[relative(p) for p in PAGES])
def test_page_runs_as_written(page, tmp_path):
    try:
        run_page(page, tmp_path)
    except _Skip as exc:
        pytest.skip(str(exc))


def test_the_guide_is_discovered():
    names = {relative(p) for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/nir.md", "docs/contributing.md"} <= names
    assert all((PROJECT / n).is_file() for n in names)


# Documents a user of talon does not have: the TALON seeds and reference sections it was built from.
FOREIGN_CITATIONS = re.compile(r"\b[Ss]eeds? \d{3}\b|\bthe seeds?'s?|\breference §|\bTALON §|\barchitecture §")
PAGE_SECTION = re.compile(r"`?(?:docs/)?([\w-]+\.md)`? §\d")


@pytest.mark.parametrize("page", PAGES, ids=[relative(p) for p in PAGES])
def test_pages_cite_only_talons_own_pages(page):
    text = page.read_text(encoding="utf-8")
    assert FOREIGN_CITATIONS.findall(text) == []
    pages = {p.name for p in PAGES}
    assert [m for m in PAGE_SECTION.findall(text) if m not in pages] == []  # e.g. "nir.md §1.3" of another text
