"""The ``talon`` (alias ``t1c``) command line.

Every command that reports takes ``--json`` and then prints exactly one JSON document to stdout.
Exit codes (``docs/cli.md``): 0 success; 1 findings (lint errors, invalid graph, graphs that
differ, a fingerprint that does not match, no path found); 2 bad input (missing or damaged file,
unknown node, bad option value, usage errors), reported as one ``error: ...`` line on stderr.
"""

from talon.cli import (  # noqa: F401  (each module registers its commands)
    backend_commands,
    evaluate_commands,
    events_commands,
    fpga_commands,  # extends mapping_commands' 'talon compile' with --target fpga (imports it first)
    graph_commands,
    mapping_commands,
    nir_commands,
    viz_commands,
)
from talon.cli._common import main

__all__ = ["main"]
