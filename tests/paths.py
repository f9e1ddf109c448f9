"""Where the tests find external data: ``../shared`` beside the project (override with TALON_SHARED)."""

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TALON_SHARED", PROJECT.parent / "shared"))
NIR_PAPER = SHARED / "data" / "nir-paper"
