"""The Model Explorer adapter extension (imported by Model Explorer as ``talon.viz.model_explorer.main``)."""

from __future__ import annotations

from model_explorer import Adapter, AdapterMetadata, ModelExplorerGraphs

from . import ADAPTER_ID, convert_file


class TalonAdapter(Adapter):
    """Converts a TALON IR ``.t1c`` file into Model Explorer graphs."""

    metadata = AdapterMetadata(
        id=ADAPTER_ID,
        name="TALON IR adapter",
        description="Opens TALON IR .t1c files (talon.viz.model_explorer).",
        source_repo="",
        fileExts=["t1c"],
    )

    def __init__(self):
        super().__init__()

    def convert(self, model_path: str, settings: dict) -> ModelExplorerGraphs:
        return convert_file(model_path)
