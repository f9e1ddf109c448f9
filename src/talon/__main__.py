"""``python -m talon`` is the ``talon`` command."""

from talon.cli import main

main(prog_name="talon")
