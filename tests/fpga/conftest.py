"""FPGA tests share one C-simulation cache per test session (g++ builds are the slow part)."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_csim_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TALON_FPGA_CACHE", str(tmp_path_factory.mktemp("fpga-csim-cache")))
    yield
    mp.undo()
