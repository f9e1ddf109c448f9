"""The CPU backend (numpy only): reference simulator, fixed-point simulator, profiler."""

from .backend import CPUBackend

__all__ = ["CPUBackend"]
