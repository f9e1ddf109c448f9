"""Test-suite configuration: hypothesis profiles and the no-skips-in-CI rule."""

import os

import pytest
from hypothesis import HealthCheck, settings

# Shared, noisy machines: no per-example deadlines; CI runs more examples.
settings.register_profile("dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        # Every optional dependency is installed in CI: a skip there hides a broken install.
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (every dependency should be installed): {report.longrepr}"


@pytest.fixture
def force_numba(monkeypatch):
    """The compiled kernels whatever the size of the work (``TALON_FORCE_NUMBA=1``, docs/backend.md):
    small test inputs would otherwise run the numpy twins. Skips without the fast extra."""
    from talon._compiled import numba_available

    if not numba_available():
        pytest.skip("the fast extra (numba) is not installed")
    monkeypatch.setenv("TALON_FORCE_NUMBA", "1")


@pytest.fixture
def fresh_dispatch(monkeypatch):
    """The default mode, whatever the caller's environment, as in a new process (numba not started,
    no twin work done, no plan running)."""
    from talon import _compiled

    monkeypatch.delenv(_compiled.DISABLE, raising=False)
    monkeypatch.delenv(_compiled.FORCE, raising=False)
    monkeypatch.setattr(_compiled, "numba_installed", lambda: True)
    monkeypatch.setattr(_compiled, "_started", False)
    monkeypatch.setattr(_compiled, "_foregone", 0.0)
    monkeypatch.setattr(_compiled, "_planned", 0.0)
