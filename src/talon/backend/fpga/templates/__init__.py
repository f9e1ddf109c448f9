"""The small text templates of a generated HLS project (``$name`` placeholders, string.Template)."""

from __future__ import annotations

from importlib import resources
from string import Template


def render(name: str, context: dict) -> str:
    text = resources.files(__package__).joinpath(f"{name}.in").read_text()
    return Template(text).substitute(context)
