"""Lossless encoding of node parameters and metadata as JSON plus a list of numpy arrays.

JSON carries the structure; arrays are replaced by references into an array list, so they can be
stored in HDF5 bit-exactly. Supported values: None, bool, int, float (including nan/inf), str,
list, tuple, dict (any keys of these types), numpy arrays and numpy scalars. An enum member that
compares equal to its value (``StrEnum``, ``IntEnum``: talon's own field enums) is stored as that
value; any other enum member is refused, since it would read back as a value that is no longer
equal to it. Encoding of anything else raises ``TypeError`` naming where it was found.

Tags (a JSON object whose single key starts with ``$``):
``{"$array": i}`` array *i*; ``{"$scalar": i}`` numpy scalar stored as 0-d array *i*;
``{"$tuple": [...]}``; ``{"$dict": [[key, value], ...]}`` for dicts whose keys are not all
plain strings (or start with ``$``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from .budget import MAX_NESTING

MAX_INT_BITS = 14_000  # ~4,200 decimal digits: Python refuses to print longer ints (sys.set_int_max_str_digits)


def encode(value: Any, arrays: list[np.ndarray], where: str, depth: int = 0) -> Any:
    """Return a JSON-compatible form of ``value``, appending its arrays to ``arrays``.

    Containers may nest at most ``MAX_NESTING`` levels (a cyclic value is refused that way)."""
    if depth > MAX_NESTING:
        raise TypeError(f"{where}: values nest deeper than {MAX_NESTING} levels (is a list or dict inside itself?)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        if isinstance(value, (int, float, str)):  # IntEnum, StrEnum ...: equal to their value
            return encode(value.value, arrays, where, depth + 1)
        raise TypeError(
            f"{where}: cannot store enum member {value!s}: it would read back as {value.value!r}, "
            "which is not equal to it (store its .value or .name, or use a StrEnum/IntEnum)"
        )
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TypeError(f"{where}: an int of {value.bit_length():,} bits is too long to store (store it as a str)")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiub":
            raise TypeError(f"{where}: cannot store an array of dtype {value.dtype} (numeric arrays only)")
        arrays.append(value)
        return {"$array": len(arrays) - 1}
    if isinstance(value, np.generic):
        if not isinstance(value, (np.number, np.bool_)) or value.dtype.kind not in "fiub":
            raise TypeError(f"{where}: cannot store a numpy scalar of type {type(value).__name__}")
        arrays.append(np.asarray(value))
        return {"$scalar": len(arrays) - 1}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v, arrays, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
        return {
            "$dict": [
                [encode(k, arrays, f"{where} key", depth + 1), encode(v, arrays, f"{where}[{k!r}]", depth + 1)]
                for k, v in value.items()
            ]
        }
    raise TypeError(
        f"{where}: cannot store a value of type {type(value).__name__} in a .t1c file "
        "(use None, bool, int, float, str, list, tuple, dict or numpy arrays)"
    )


def decode(obj: Any, arrays: list[np.ndarray], where: str, depth: int = 0) -> Any:
    """Inverse of :func:`encode`."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: values nest deeper than {MAX_NESTING} levels")
    depth += 1
    if isinstance(obj, list):
        return [decode(v, arrays, where, depth) for v in obj]
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: unexpected JSON value {obj!r}")
    if len(obj) == 1:
        ((tag, body),) = obj.items()
        if tag in ("$array", "$scalar"):
            if isinstance(body, bool) or not isinstance(body, int) or not 0 <= body < len(arrays):
                raise ValueError(f"{where}: bad array reference {body!r}")
            arr = arrays[body]
            if tag == "$scalar":
                if arr.shape != ():
                    raise ValueError(f"{where}: scalar reference {body} points to an array of shape {arr.shape}")
                return arr[()]
            return arr
        if tag == "$tuple":
            return tuple(decode(v, arrays, where, depth) for v in _list(body, where))
        if tag == "$dict":
            pairs = _list(body, where)
            if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise ValueError(f"{where}: malformed $dict")
            return {
                _hashable(decode(k, arrays, where, depth), where): decode(v, arrays, where, depth) for k, v in pairs
            }
    if any(isinstance(k, str) and k.startswith("$") for k in obj):
        raise ValueError(f"{where}: unknown tag in {sorted(obj)}")
    return {k: decode(v, arrays, f"{where}[{k!r}]", depth) for k, v in obj.items()}


def _list(body: Any, where: str) -> list:
    if not isinstance(body, list):
        raise ValueError(f"{where}: expected a JSON list, got {type(body).__name__}")
    return body


def _hashable(key: Any, where: str) -> Any:
    try:
        hash(key)
    except TypeError:
        raise ValueError(f"{where}: dict key {key!r} is not hashable") from None
    return key
