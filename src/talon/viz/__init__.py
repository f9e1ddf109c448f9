"""talon.viz: plots of spike activity (PNG via matplotlib)."""
