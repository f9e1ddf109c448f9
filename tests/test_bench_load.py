"""bench/__main__.py and bench/load.py: the load average around each topic, the busy warning, and
``--update-docs`` refused on a busy machine unless ``--allow-busy``. The load source is injected
(a list of readings) and the modules are stand-ins: nothing is timed."""

from __future__ import annotations

import pytest
from bench.__main__ import _sections, main, run
from bench.common import Row
from bench.load import LoadMonitor, TopicLoad


def _monitor(*readings: float, cores: int = 2) -> LoadMonitor:
    values = iter(readings)
    return LoadMonitor(lambda: next(values), cores=cores)


def _stand_in(name: str) -> tuple[list[Row], list[str]]:
    return [Row(name, "case", 1.0, "reference", 2.0)], []


def _run(tmp_path, monitor, **kwargs) -> tuple[int, str, str]:
    results, doc = tmp_path / "results" / "latest.md", tmp_path / "benchmarks.md"
    status = run(["bench_a", "bench_b"], monitor=monitor, run_module=_stand_in, results=results, doc=doc, **kwargs)
    return status, results.read_text() if results.exists() else "", doc.read_text() if doc.exists() else ""


def test_a_topic_is_busy_when_the_load_exceeds_the_cores_at_either_end():
    assert not TopicLoad("t", 2.0, 1.0, cores=2).busy  # equal to the cores: every process has one
    assert TopicLoad("t", 2.5, 1.0, cores=2).busy and TopicLoad("t", 0.1, 6.0, cores=2).busy
    assert not TopicLoad("t", 6.0, 7.9, cores=8).busy
    assert "busy machine" in TopicLoad("t", 0.1, 6.0, 2).describe()
    assert "busy" not in TopicLoad("t", 0.1, 0.4, 2).describe()
    with pytest.raises(ValueError, match="cores"):
        LoadMonitor(lambda: 0.0, cores=0)


def test_each_section_records_the_load_before_and_after_its_topic(tmp_path, capsys):
    status, results, doc = _run(tmp_path, _monitor(0.5, 1.25, 1.5, 0.75))
    sections = _sections(results)
    assert status == 0 and doc == "" and list(sections) == ["bench_a", "bench_b"]
    assert "before → after: 0.50 → 1.25, on 2 cores." in sections["bench_a"]
    assert "before → after: 1.50 → 0.75, on 2 cores." in sections["bench_b"]
    assert "warning" not in capsys.readouterr().err


def test_a_busy_topic_is_warned_about_and_marked_but_results_are_written(tmp_path, capsys):
    status, results, _ = _run(tmp_path, _monitor(0.5, 1.0, 1.0, 5.5))
    err = capsys.readouterr().err
    assert status == 0  # without --update-docs a busy run only warns
    assert "warning: bench_b ran on a busy machine: load average 1.0 → 5.5 is above the 2 cores" in err
    assert "bench_a ran" not in err and "measured on a busy machine: bench_b" in err
    assert "Measured on a busy machine" in _sections(results)["bench_b"]
    assert "busy" not in _sections(results)["bench_a"]


def test_update_docs_on_a_busy_machine_stops_before_measuring(tmp_path, capsys):
    ran = []

    def recording(name):
        ran.append(name)
        return _stand_in(name)

    results, doc = tmp_path / "latest.md", tmp_path / "benchmarks.md"
    status = run(["bench_a"], update_docs=True, monitor=_monitor(3.0), run_module=recording, results=results,
                 doc=doc)  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and ran == [] and not doc.exists() and not results.exists()
    assert err.startswith("error: the machine is busy (load average 3.0 above its 2 cores)") and "--allow-busy" in err


def test_update_docs_keeps_the_page_when_the_machine_became_busy(tmp_path, capsys):
    (tmp_path / "benchmarks.md").write_text("old page")
    status, results, doc = _run(tmp_path, _monitor(0.2, 0.2, 1.0, 0.3, 4.0), update_docs=True)
    err = capsys.readouterr().err
    assert status == 1 and doc == "old page" and list(_sections(results)) == ["bench_a", "bench_b"]
    assert "error: not writing benchmarks.md: bench_b ran on a busy machine" in err


def test_allow_busy_writes_the_page_and_the_page_says_it_was_busy(tmp_path):
    status, _, doc = _run(tmp_path, _monitor(3.0, 4.0, 3.5, 3.0), update_docs=True, allow_busy=True)
    assert status == 0 and all("Measured on a busy machine" in s for s in _sections(doc).values())


def test_an_idle_run_updates_the_page(tmp_path, capsys):
    status, results, doc = _run(tmp_path, _monitor(0.1, 0.2, 0.3, 0.4, 0.5), update_docs=True)
    assert status == 0 and doc == results and "warning" not in capsys.readouterr().err


def test_allow_busy_without_update_docs_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--allow-busy"])
    assert exit_.value.code == 2 and "--allow-busy only applies with --update-docs" in capsys.readouterr().err
