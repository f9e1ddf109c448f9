"""``python -m bench``: run every benchmark module in this folder and print their tables."""

import importlib
import pkgutil
from pathlib import Path


def main() -> None:
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            importlib.import_module(f"bench.{info.name}").main()


if __name__ == "__main__":
    main()
