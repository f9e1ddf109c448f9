"""``t1c`` is the T1C-IR-era name of talon: ``import t1c`` is ``import talon``.

``t1c.X`` resolves to the very module object ``talon.X`` (not a copy), so classes and
registries are shared: ``from t1c import ir, bridge`` and ``from t1c.bridge import T1CExporter``
work unchanged.
"""

import importlib
import importlib.abc
import importlib.util
import sys

import talon


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.original_spec = module.__spec__
        return module

    def exec_module(self, module):
        # importlib stamped the alias spec on the shared module; give it back its own.
        module.__spec__ = self.original_spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("t1c."):
            return None
        real = "talon." + fullname[len("t1c.") :]
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _AliasFinder())
sys.modules[__name__] = talon
