"""The hardware descriptor: a JSON execution plan produced by ``compile``.

Schema (version 1; docs/backend.md has the field-by-field description)::

    {"format": "talon-hardware-descriptor", "version": 1, "backend": "cpu",
     "graph": {"nodes": int, "edges": int, "inputs": {...}, "outputs": {...}},
     "config": {...CompileConfig...},
     "values": [{"id", "name", "shape", "producer"}],
     "schedule": [{"component": k, "mode": "sequence" | "step",
                   "ops": [{"node", "type", "inputs": [{"value", "delayed"}], "outputs", "precision": {...}}]}],
     "buffers": [{"name", "kind": "weight" | "parameter" | "state" | "activation", "shape", "dtype", "bits", "bytes"}],
     "memory": {"weight_bytes", "parameter_bytes", "state_bytes", "peak_activation_bytes", "peak_bytes"}}

A descriptor holds no weights (the graph does); ``batch_size`` 1 is assumed for state and
activation buffers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from talon.ir.paths import check_path

from .errors import BackendError

FORMAT = "talon-hardware-descriptor"
VERSION = 1


class HardwareDescriptor:
    """A compiled execution plan (a JSON-serialisable dict) and, when made by ``compile``, the
    internal program the backend executes."""

    def __init__(self, data: dict[str, Any], program: Any = None) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BackendError(f"not a talon hardware descriptor (expected format {FORMAT!r})")
        if data.get("version", 0) > VERSION:
            raise BackendError(
                f"hardware descriptor version {data.get('version')} is newer than this talon ({VERSION}); upgrade"
            )
        self.data = data
        self.program = program

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __repr__(self) -> str:
        n_ops = sum(len(c["ops"]) for c in self.data.get("schedule", []))
        return f"HardwareDescriptor(backend={self.data.get('backend')!r}, precision={self.precision!r}, ops={n_ops})"

    @property
    def precision(self) -> str:
        return self.data["config"]["precision"]

    @property
    def schedule(self) -> list[dict]:
        return self.data["schedule"]

    @property
    def buffers(self) -> list[dict]:
        return self.data["buffers"]

    @property
    def memory(self) -> dict[str, int]:
        return self.data["memory"]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.data))

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int = 2) -> str:
        """The descriptor as JSON text; with ``path``, also written there atomically."""
        text = json.dumps(self.data, indent=indent, allow_nan=False)
        if path is not None:
            from talon.ir.atomic import atomic_output

            with atomic_output(path) as tmp:  # permission bits from the umask, fsync'd, renamed into place
                Path(tmp).write_text(text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> HardwareDescriptor:
        """Read a descriptor from JSON text or a file (the result carries no executable program)."""
        text = os.fsdecode(check_path(source, "HardwareDescriptor.from_json: JSON text or the .json file to read"))
        if not text.lstrip().startswith("{"):
            path = Path(source)
            try:
                text = path.read_text()
            except OSError as exc:
                raise BackendError(f"cannot read hardware descriptor {path}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackendError(f"hardware descriptor is not valid JSON: {exc}") from None
        return cls(data)
