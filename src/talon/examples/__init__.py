"""Example models and data generators that the tutorials in ``docs/`` use (not part of the API)."""
