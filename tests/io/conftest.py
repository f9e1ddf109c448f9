"""The EVT decoders run twice: numba kernels (the ``fast`` extra) and their numpy twins."""

import pytest

import talon.io.prophesee as prophesee
from talon._compiled import numba_available


@pytest.fixture(params=["numba", "numpy"])
def decoder_path(request, monkeypatch):
    """``"numba"`` (skipped without the fast extra) or ``"numpy"`` (the twins, as TALON_DISABLE_NUMBA=1)."""
    if request.param == "numpy":
        monkeypatch.setattr(prophesee, "compiled", lambda kernel: None)
    elif not numba_available():
        pytest.skip("the fast extra (numba) is not installed")
    else:
        monkeypatch.setenv("TALON_FORCE_NUMBA", "1")  # short test streams: force the kernels
    return request.param
