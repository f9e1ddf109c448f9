"""talon.viz: plots of spike activity (PNG via matplotlib, imported when a plot is drawn)."""

from .raster import plot_spikes_and_membranes

__all__ = ["plot_spikes_and_membranes"]
