"""bench/__main__.py: a partial run replaces its modules' sections of the page and keeps the others."""

from bench.__main__ import _section, _sections, render
from bench.common import Row


def test_a_partial_run_replaces_only_its_sections():
    old = render(
        {
            "bench_a": _section("bench_a", [Row("a", "case", 2.0, "ref", 1.0)], []),
            "bench_b": _section("bench_b", [Row("b", "case", 1.0, "ref", 3.0)], ["### extra", "", "kept"]),
        }
    )
    new = render({"bench_a": _section("bench_a", [Row("a", "case", 1.0, "ref", 1.0)], [])}, old)
    assert list(_sections(new)) == ["bench_a", "bench_b"]
    assert "| a | case | 1 s | ref | 1 s | 1.00× |" in new and "0.50×" not in new
    assert _sections(new)["bench_b"] == _sections(old)["bench_b"] and "kept" in new
    assert render(_sections(new), new) == new


def test_the_committed_page_is_in_sections():
    from bench.__main__ import DOC

    text = DOC.read_text()
    assert set(_sections(text)) >= {"bench_backend", "bench_bridge", "bench_io", "bench_jax"}
    assert render({}, text) == text
