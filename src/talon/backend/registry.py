"""The backend registry: ``get_backend("cpu")``, ``list_backends()``, ``register_backend(...)``."""

from __future__ import annotations

from collections.abc import Callable

from .base import BackendBase
from .errors import BackendError

BackendFactory = Callable[[], BackendBase]


class BackendRegistry:
    """Named backends, instantiated on first use (one shared instance per name)."""

    def __init__(self) -> None:
        self._factories: dict[str, BackendFactory] = {}
        self._instances: dict[str, BackendBase] = {}

    def register(self, name: str, backend: type[BackendBase] | BackendBase, *, overwrite: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise BackendError(f"a backend name is a non-empty string, got {name!r}")
        if name in self._factories and not overwrite:
            raise BackendError(f"backend {name!r} is already registered; pass overwrite=True to replace it")
        if isinstance(backend, BackendBase):
            self._factories[name] = lambda: backend
        elif isinstance(backend, type) and issubclass(backend, BackendBase):
            self._factories[name] = backend
        else:
            raise BackendError(
                f"register_backend({name!r}, ...) needs a BackendBase subclass or instance, got {backend!r}"
            )
        self._instances.pop(name, None)

    def get(self, name: str) -> BackendBase:
        if name not in self._factories:
            raise BackendError(
                f"unknown backend {name!r}; available: {', '.join(self._factories) or 'none'} "
                "(talon ships the 'cpu' reference backend and the 'fpga' HLS backend; add others with register_backend)"
            )
        if name not in self._instances:
            instance = self._factories[name]()
            if not instance.name:
                instance.name = name
            self._instances[name] = instance
        return self._instances[name]

    def names(self) -> list[str]:
        return list(self._factories)

    def query(
        self, primitive: str | None = None, precision: str | None = None, cyclic: bool | None = None
    ) -> list[str]:
        """Names of the backends supporting a primitive, a precision and/or cyclic graphs."""
        out = []
        for name in self._factories:
            caps = self.get(name).get_capabilities()
            if primitive is not None and primitive not in caps.supported_primitives:
                continue
            if precision is not None and precision not in caps.supported_precisions:
                continue
            if cyclic and not caps.supports_cyclic:
                continue
            out.append(name)
        return out


REGISTRY = BackendRegistry()


def get_backend(name: str = "cpu") -> BackendBase:
    """The registered backend called ``name``."""
    return REGISTRY.get(name)


def list_backends() -> list[str]:
    return REGISTRY.names()


def register_backend(name: str, backend: type[BackendBase] | BackendBase, *, overwrite: bool = False) -> None:
    """Make ``backend`` (a BackendBase subclass or instance) available as ``get_backend(name)``."""
    REGISTRY.register(name, backend, overwrite=overwrite)


def query_backends(primitive: str | None = None, precision: str | None = None, cyclic: bool | None = None) -> list[str]:
    return REGISTRY.query(primitive, precision, cyclic)
