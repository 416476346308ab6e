"""crowdloop's progress lines on stderr, in the command and in the worker processes it starts."""

from __future__ import annotations

import logging
import sys


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (tests and notebooks replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


def log_to_stderr(level: int) -> None:
    """The ``crowdloop`` logger's lines on stderr from ``level`` up (other libraries keep their own
    settings). Idempotent."""
    log = logging.getLogger("crowdloop")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(asctime)s  %(message)s", datefmt="%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


def log_to_stderr_if_unheard(level: int) -> None:
    """:func:`log_to_stderr`, unless something already shows the ``crowdloop`` logger's lines. A flow
    run that a Prefect worker (or ``crowdloop deploy``'s runner) starts in a process of its own sets
    up nothing for them, and the round's own lines (its result, where its folds went, why it did what
    it did) went nowhere; on stderr, the worker shows them among the run's lines."""
    if not logging.getLogger("crowdloop").handlers:
        log_to_stderr(level)
