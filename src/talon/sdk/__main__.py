"""``python -m talon.sdk`` is the ``talon`` command (as in the original TALON SDK)."""

from talon.cli import main

main(prog_name="talon")
