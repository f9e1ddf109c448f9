"""Package-level contracts: import isolation of the IR and the `t1c` alias."""

import subprocess
import sys

import talon
from tests.subprocesses import child_env


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=child_env()
    ).stdout.strip()


def test_importing_the_ir_does_not_import_torch_or_jax():
    """Nor any other talon layer: the counting and the fingerprints (which the backend, the SDK and
    the page use) are part of the IR (architecture §2; tests/test_layering.py checks the source)."""
    out = _run(
        "import sys, talon.ir, talon\n"
        "from talon import ir\n"
        "import talon.ir.counting, talon.ir.fingerprint\n"
        "layers = ('bridge', 'interop', 'io', 'graph', 'backend', 'sdk', 'viz', 'cli', 'evaluate')\n"
        "print(sorted(m for m in ('torch', 'jax', 'jaxlib', 'flax', 'nir', 'snntorch') if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('talon.') and m.split('.')[1] in layers))"
    )
    assert out == "[]\n[]"


def test_t1c_is_the_same_package():
    import t1c.ir
    from t1c.ir import LIF

    import t1c
    from t1c import ir

    assert t1c is talon
    assert ir is talon.ir is t1c.ir
    assert LIF is talon.ir.LIF
    assert talon.ir.__spec__.name == "talon.ir"


def test_t1c_alias_in_a_fresh_interpreter():
    out = _run("from t1c import ir; import talon.ir; print(ir is talon.ir, ir.Graph.__module__)")
    assert out == "True talon.ir.graph"
