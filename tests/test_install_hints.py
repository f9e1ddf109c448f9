"""Issue #17, item 3: errors about a missing optional dependency give a command that works.

talon is not published on a package index, so ``pip install 'talon-toolchain[nir]'`` cannot work;
every hint is the editable install of the checkout with the extra (docs/install.md).
"""

import re
import subprocess
import sys
from pathlib import Path

from tests.subprocesses import child_env

SRC = Path(__file__).resolve().parents[1] / "src"


def test_no_message_asks_for_the_unpublished_distribution():
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"talon-toolchain\[", line)
    ]
    assert offenders == []


def test_a_missing_nir_names_the_checkout_install():
    code = (
        "import sys; sys.modules['nir'] = None\n"
        "from talon.interop.nir import to_nir\n"
        "from talon.examples import mlp_graph\n"
        "try:\n    to_nir(mlp_graph())\nexcept ImportError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    ).stdout
    assert out.startswith("MissingDependencyError")
    assert "pip install -e '.[nir]' in the talon checkout" in out
