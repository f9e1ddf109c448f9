"""The NIR layer works without torch or jax (architecture §2: ``talon.interop`` imports ir, nir and,
lazily, jax; ``talon.interop.nir``'s docstring: torch and jax are never imported).

A child process makes ``import torch`` and ``import jax`` fail (a meta-path finder, as on a machine
without them), imports every module of ``talon.interop.nir`` — the producer profiles of the torch
frameworks included — and reads a paper file; a profile that needs torch to restate its framework's
float32 arithmetic refuses with an error that says to install it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.paths import NIR_PAPER
from tests.subprocesses import child_env

CHILD = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "jax"):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch
        blocked = False
    except ImportError:
        blocked = True

    import talon.interop.nir as nir_layer
    from talon import ir

    modules = sorted(m.name for m in pkgutil.walk_packages(nir_layer.__path__, "talon.interop.nir."))
    for name in modules:
        importlib.import_module(name)
    graph = nir_layer.read_nir(sys.argv[2])
    try:
        nir_layer.read_nir(sys.argv[1], producer="norse")
        refusal = None
    except ir.ConversionError as exc:
        refusal = str(exc)
    print(json.dumps({
        "blocked": blocked,
        "modules": modules,
        "nodes": len(graph.nodes),
        "refusal": refusal,
        "loaded": sorted(m for m in ("torch", "jax", "nirtorch", "norse", "sinabs", "rockpool") if m in sys.modules),
    }))
    """
)


def test_the_nir_layer_imports_and_reads_files_without_torch():
    lif, cnn = NIR_PAPER / "01_lif__lif_norse.nir", NIR_PAPER / "02_cnn__cnn_sinabs.nir"
    if not cnn.is_file():
        pytest.skip(f"the NIR paper files are not in {NIR_PAPER}")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(lif), str(cnn)], env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a module-level torch import anywhere fails here
    result = json.loads(done.stdout)
    assert result["blocked"] and result["loaded"] == []
    assert {f"talon.interop.nir.profile_{name}" for name in ("norse", "rockpool", "sinabs", "spyx")} <= set(
        result["modules"]
    )
    assert result["nodes"] >= 3  # the paper's CNN, read without a profile
    assert result["refusal"] is not None and "install torch" in result["refusal"]
