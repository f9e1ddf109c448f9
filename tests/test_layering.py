"""The layer table of the architecture (§2: imports point downwards only), checked on the source.

Every ``.py`` file under ``src/talon`` is parsed with :mod:`ast` and every import of a talon
module — at module level, inside a function (a lazy import), under ``if TYPE_CHECKING``, through
``importlib.import_module("talon...")``, relative or via the ``t1c`` alias — is mapped to the
package it reaches (``talon.viz.costs`` importing ``talon.sdk.counting``: viz → sdk) and compared
with :data:`ALLOWED`. A failure names the file, the line and the rule it breaks. Of third-party packages, §2's rules on
``talon.ir`` and ``talon.viz`` are checked, and numba is imported by ``talon._compiled`` alone.

The table is §2's. Packages §2 does not list are placed by what they are:

* ``talon`` itself (``__version__``) may be imported by every package and imports none;
* the private helper modules ``talon._compiled`` (numba), ``talon._nms`` and ``talon._terminal``
  sit just above ``talon.ir``: any package above ir may use them, and they import ir only;
* ``talon.evaluate`` (data-set evaluation on the CPU backend) sits beside ``talon.sdk``: anything
  below, not the SDK; ``talon.examples`` (the example models pages use) builds on ir and bridge;
* ``talon.demo`` (the end-to-end example) and ``talon.cli`` are applications on top: ``cli`` may
  import ``sdk`` and, being the top, every other package below it;
* a ``__main__`` module (``python -m talon``, ``python -m talon.sdk``) is a program that nothing
  imports: it may start the ``talon`` command.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import talon

SOURCE = Path(talon.__file__).resolve().parent

LIBRARY = ("ir", "bridge", "interop", "io", "graph", "backend", "viz", "sdk")
HELPERS = ("_compiled", "_nms", "_terminal")
ROOT = ""  # the package ``talon`` itself

ALLOWED: dict[str, frozenset[str]] = {
    name: frozenset(allowed)
    for name, allowed in {
        # §2
        "ir": (),
        "bridge": ("ir",),
        "interop": ("ir",),
        "io": ("ir",),
        "graph": ("ir",),
        "backend": ("ir", "graph"),
        "viz": ("ir", "graph", "io"),
        "sdk": ("ir", "bridge", "interop", "io", "graph", "backend", "viz"),
        "cli": (*LIBRARY, "evaluate", "examples", "demo"),
        # outside §2's table (module docstring)
        "evaluate": ("ir", "bridge", "interop", "io", "graph", "backend", "viz"),
        "examples": ("ir", "bridge"),
        "demo": (*LIBRARY, "evaluate", "examples"),
        "_compiled": ("ir",),
        "_nms": ("ir", "_compiled"),
        "_terminal": (),
        "__main__": ("cli",),
        ROOT: (),
    }.items()
}
THIRD_PARTY_ONLY = {"ir": frozenset({"numpy", "h5py"})}
"""§2: ``talon.ir`` imports numpy and h5py only (and the standard library)."""
THIRD_PARTY_NEVER = {"viz": frozenset({"torch", "snntorch", "norse", "nirtorch"})}
"""§2: ``talon.viz`` never imports torch."""
THIRD_PARTY_OWNER = {"numba": "_compiled"}
"""The one package that imports each of these (the brief: numba goes through ``talon._compiled``)."""


def allowed(package: str, module_file: Path) -> frozenset[str]:
    """What ``package`` may import: its row, the root, the helpers (above ir), and ``cli`` from a
    ``__main__`` program."""
    extra = {ROOT} | (set(HELPERS) if package not in ("ir", *HELPERS, ROOT) else set())
    if module_file.name == "__main__.py":
        extra.add("cli")
    return ALLOWED[package] | extra


def describe(package: str) -> str:
    return "talon" if package == ROOT else f"talon.{package}"


@dataclass(frozen=True)
class Violation:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class _Imports(ast.NodeVisitor):
    """Collects ``(line, dotted module, enclosing function or None)`` for every import in a module."""

    def __init__(self, module: list[str], is_package: bool):
        self.module, self.is_package = module, is_package
        self.found: list[tuple[int, str, str | None]] = []
        self.functions: list[str] = []

    def _function(self, node):
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def _add(self, line: int, name: str) -> None:
        self.found.append((line, name, self.functions[-1] if self.functions else None))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node.lineno, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.module if self.is_package else self.module[:-1]
            base = base[: len(base) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        if module in ("talon", "t1c"):  # `from talon import viz` reaches talon.viz
            for alias in node.names:
                self._add(node.lineno, f"{module}.{alias.name}")
        else:
            self._add(node.lineno, module)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0] if node.args else None
        if name == "import_module" and isinstance(first, ast.Constant) and isinstance(first.value, str):
            self._add(node.lineno, first.value)
        self.generic_visit(node)


def package_of(module: str, source: Path) -> str | None:
    """The package ``talon.X...`` (or ``t1c.X...``) belongs to (ROOT for ``talon`` and its
    ``__version__``); None for a module outside talon."""
    parts = module.split(".")
    if parts[0] not in ("talon", "t1c"):
        return None
    if len(parts) == 1:
        return ROOT
    head = parts[1]
    is_module = (source / head).is_dir() or (source / f"{head}.py").is_file()
    return head if is_module else ROOT


def violations(source: Path = SOURCE) -> list[Violation]:
    """Every import under ``source`` (the ``talon`` package directory) that breaks the table."""
    found = []
    for path in sorted(source.rglob("*.py")):
        rel = path.relative_to(source)
        module = ["talon", *rel.with_suffix("").parts]
        is_package = module[-1] == "__init__"
        if is_package:
            module = module[:-1]
        importer = module[1] if len(module) > 1 else ROOT
        visitor = _Imports(module, is_package)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if importer not in ALLOWED:
            message = f"{describe(importer)} is missing from the layer table (ALLOWED in {Path(__file__).name})"
            found.append(Violation(path, 1, message))
            continue
        may = allowed(importer, path)
        for line, name, function in visitor.found:
            where = f"in {function}(): " if function else ""
            target = package_of(name, source)
            top = name.split(".")[0]
            if target is None:
                only, never = THIRD_PARTY_ONLY.get(importer), THIRD_PARTY_NEVER.get(importer, ())
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                owner = THIRD_PARTY_OWNER.get(top, importer)
                if owner != importer:
                    rule = f"only {describe(owner)} imports {top}"
                    found.append(Violation(path, line, f"{where}{describe(importer)} imports {top}: {rule}"))
                    continue
                if (only is not None and top not in only) or top in never:
                    rule = f"§2: {describe(importer)} never imports {top}"
                    if only is not None:
                        rule = f"§2 lets {describe(importer)} import only {', '.join(sorted(only))} and the stdlib"
                    found.append(Violation(path, line, f"{where}{describe(importer)} imports {top}: {rule}"))
                continue
            if target == importer or target in may:
                continue
            rule = f"§2 lets {describe(importer)} import only " + (
                ", ".join(describe(p) for p in sorted(ALLOWED[importer])) or "no other talon package"
            )
            message = f"{where}{describe(importer)} imports {describe(target)} ({name}): {rule}"
            found.append(Violation(path, line, message))
    return found


def test_every_import_follows_the_layer_table():
    found = violations()
    if found:
        pytest.fail(f"{len(found)} import(s) break the layers of architecture §2:\n" + "\n".join(map(str, found)))


def _write(root: Path, files: dict[str, str]) -> Path:
    source = root / "talon"
    for name, text in {"__init__.py": "", **files}.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    return source


def test_the_checker_finds_lazy_relative_and_string_imports(tmp_path):
    """The checker itself: each form of import that reaches a higher layer is reported with its file,
    line, function and rule; the allowed ones are not."""
    source = _write(
        tmp_path,
        {
            "ir/__init__.py": "from .. import __version__\nimport numpy\n",
            "ir/bad.py": "import torch\n",
            "graph/__init__.py": "from talon.ir import Graph\n",
            "bridge/__init__.py": "",
            "bridge/kernels.py": "from numba.extending import register_jitable\n",
            "_compiled.py": "def _njit():\n    import numba\n",
            "sdk/__init__.py": "",
            "sdk/__main__.py": "from talon.cli import main\n",
            "cli/__init__.py": "from talon import sdk\n",
            "viz/__init__.py": "",
            "viz/costs.py": (
                "from talon import ir, graph\n"
                "def node_costs():\n"
                "    from talon.sdk.counting import count_node\n"
                "def totals():\n"
                "    from ..sdk import analysis\n"
                "    import importlib\n"
                "    importlib.import_module('t1c.bridge')\n"
            ),
        },
    )
    viz_rule = "§2 lets talon.viz import only talon.graph, talon.io, talon.ir"
    assert [str(v) for v in violations(source)] == [
        f"{source / 'bridge/kernels.py'}:1: talon.bridge imports numba: only talon._compiled imports numba",
        f"{source / 'ir/bad.py'}:1: talon.ir imports torch: §2 lets talon.ir import only h5py, numpy and the stdlib",
        f"{source / 'viz/costs.py'}:3: in node_costs(): talon.viz imports talon.sdk (talon.sdk.counting): " + viz_rule,
        f"{source / 'viz/costs.py'}:5: in totals(): talon.viz imports talon.sdk (talon.sdk): " + viz_rule,
        f"{source / 'viz/costs.py'}:7: in totals(): talon.viz imports talon.bridge (t1c.bridge): " + viz_rule,
    ]


def test_a_package_missing_from_the_table_is_reported(tmp_path):
    source = _write(tmp_path, {"newlayer/__init__.py": "from talon import ir\n"})
    assert [str(v) for v in violations(source)] == [
        f"{source / 'newlayer/__init__.py'}:1: talon.newlayer is missing from the layer table (ALLOWED in "
        "test_layering.py)"
    ]
