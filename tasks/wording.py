"""Counts in messages that agree in number: ``1 annotation``, ``2 annotations``, ``0 rows``."""

from __future__ import annotations


def word(n: int, one: str, many: str | None = None) -> str:
    """``one`` when ``n`` is 1, else ``many`` (default ``one`` + "s"): nouns and verbs alike,
    ``word(n, "differs", "differ")``."""
    return one if n == 1 else (many if many is not None else one + "s")


def count(n: int, one: str, many: str | None = None) -> str:
    """``n`` and the noun that agrees with it: ``count(1, "round")`` is ``1 round``."""
    return f"{n} {word(n, one, many)}"
