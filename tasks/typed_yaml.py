"""Typed YAML: a nested dict laid over defaults and built into frozen dataclasses, checked key by key.

Generic: knows nothing of crowdloop's sections. :mod:`crowdloop.tasks.config` uses it
to read ``params.yaml``; every error is a :class:`ConfigError` naming the file and key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Hashable
from pathlib import Path

import yaml

from crowdloop.tasks.errors import ConfigError


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, where PyYAML keeps the
    last one silently (and DVC refuses the file as corrupted)."""

    def construct_mapping(self, node, deep=False):
        first: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in first:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one section (first on line {first[key] + 1}); "
                    "keep one", key_node.start_mark)
            if isinstance(key, Hashable):
                first[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def overlay(base: dict, user: dict, path: Path, *, cls, renamed: dict[str, str], prefix: str = "") -> dict:
    """``user``'s keys laid over ``base`` (both the nested dicts of the dataclass ``cls``): a
    section (a dataclass field) is laid over key by key, any other value, a mapping such as
    ``{annotator: cost}`` included, replaces the base's. A key that is no field of its section
    is an error (one in ``renamed``, {old dotted key: new one}, names its new name)."""
    hints = typing.get_type_hints(cls)
    out = dict(base)
    for key, value in user.items():
        if f"{prefix}{key}" in renamed:
            raise ConfigError(f"{path}: '{prefix}{key}' is now called '{renamed[prefix + key]}'; "
                              "rename it in this file.")
        if key not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{path}: unknown key '{prefix}{key}'; known keys here: {known}.")
        if dataclasses.is_dataclass(hints[key]) and isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = overlay(base[key], value, path, cls=hints[key], renamed=renamed, prefix=f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def build(cls, raw, source: str, prefix: str = ""):
    """An instance of the dataclass ``cls`` from ``raw``, every field present and of its type."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.')}' must be a mapping.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(f"{source}: unknown key '{prefix}{sorted(unknown)[0]}'.")
    kwargs = {}
    for name in names:
        key = f"{prefix}{name}"
        if name not in raw:
            raise ConfigError(f"{source}: missing key '{key}'.")
        kwargs[name] = _coerce(hints[name], raw[name], source, key)
    return cls(**kwargs)


def plain(value):
    """Nested dicts, lists for tuples: what a YAML file holds."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _coerce(hint, value, source: str, key: str):
    if dataclasses.is_dataclass(hint):
        return build(hint, value, source, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:  # e.g. str | int: the first type the value already has
            for option in options:
                if isinstance(value, option) and not isinstance(value, bool):
                    return value
            names = " or ".join(o.__name__ for o in options)
            raise ConfigError(f"{source}: '{key}' must be {names}, got {value!r}.")
        return _coerce(options[0], value, source, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a mapping, got {value!r}.")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}.")
        return tuple(_coerce(args[0], v, source, key) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint is bool) != isinstance(value, bool) or not isinstance(value, hint):  # true is no int
        raise ConfigError(f"{source}: '{key}' must be {hint.__name__}, got {value!r}.")
    return value
