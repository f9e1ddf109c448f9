"""Build hook: bundle the talon.viz page scripts (npm) into package data when they are missing.

Everything else is in pyproject.toml. `make viz-assets` does the same build in a checkout; this
hook makes `python -m build` (sdist, then a wheel from the sdist) carry the bundle too.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
WEB = HERE / "src" / "talon" / "viz" / "web"
BUNDLE = HERE / "src" / "talon" / "viz" / "static" / "viewer.js"


class BuildPyWithViz(build_py):
    def run(self):
        if not BUNDLE.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("building talon needs node and npm to bundle the talon.viz page scripts")
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
            subprocess.run([shutil.which("node") or "node", "build.mjs"], cwd=WEB, check=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithViz})
