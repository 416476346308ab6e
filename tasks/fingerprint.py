"""A SHA-256 of a value by its content: frames, arrays, dataclasses, mappings and scalars.

Equal content, equal digest, whatever the objects' identity; a type it does not know is an
error (TypeError), never skipped, so a new kind of input can not silently drop out of a
cache key. Used for the plan cache's key (:mod:`.plan_cache`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import PurePath

import numpy as np
import pandas as pd


def fingerprint(value) -> str:
    """The hex SHA-256 of ``value``'s content (see :func:`update`)."""
    digest = hashlib.sha256()
    update(digest, value)
    return digest.hexdigest()


def update(digest, value) -> None:
    """Feed ``value`` into ``digest``, tagged with its kind so that, say, ``1`` and ``"1"`` or ``[1]``
    and ``(1,)`` differ. DataFrames and Series by index, column names, dtypes and values (pandas's
    row hashes); arrays by dtype, shape and bytes; dataclasses by type and fields; dicts by sorted
    keys; sets sorted."""
    put = (lambda tag, data=b"": digest.update(b"%s:%d:" % (tag, len(data)) + data))
    if value is None or isinstance(value, (bool, int, float, str, np.generic, PurePath)):
        put(type(value).__name__.encode(), repr(value).encode())
    elif isinstance(value, pd.DataFrame):
        put(b"frame", repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
        _rows(put, value)
    elif isinstance(value, pd.Series):
        put(b"series", repr((str(value.name), str(value.dtype))).encode())
        _rows(put, value)
    elif isinstance(value, pd.Index):
        put(b"index", repr(str(value.dtype)).encode())
        put(b"values", pd.util.hash_array(np.asarray(value, dtype=object)).tobytes())
    elif isinstance(value, np.ndarray):
        put(b"array", repr((value.dtype.str, value.shape)).encode())
        put(b"values", pd.util.hash_array(value.ravel()).tobytes() if value.dtype == object
            else np.ascontiguousarray(value).tobytes())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        put(b"dataclass", type(value).__qualname__.encode())
        for field in dataclasses.fields(value):
            put(b"field", field.name.encode())
            update(digest, getattr(value, field.name))
    elif isinstance(value, dict):
        put(b"dict", b"%d" % len(value))
        for key in sorted(value, key=repr):
            update(digest, key)
            update(digest, value[key])
    elif isinstance(value, (list, tuple)):
        put(type(value).__name__.encode(), b"%d" % len(value))
        for item in value:
            update(digest, item)
    elif isinstance(value, (set, frozenset)):
        update(digest, sorted(value, key=repr))
    else:
        raise TypeError(f"cannot fingerprint a {type(value).__qualname__}: add it to tasks/fingerprint.py")


def _rows(put, value: pd.DataFrame | pd.Series) -> None:
    put(b"index", repr((str(value.index.dtype), value.index.names)).encode())
    put(b"rows", pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
