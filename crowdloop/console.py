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
    shown = [h for h in logging.getLogger("crowdloop").handlers if not getattr(h, "crowdloop_to_prefect", False)]
    if not shown:  # the Prefect API handler (log_to_prefect) shows nothing where the worker prints
        log_to_stderr(level)


def log_to_prefect() -> None:
    """The ``crowdloop`` logger's lines also in the Prefect run they are logged in (its page in the
    Prefect UI, ``prefect flow-run logs``), beside Prefect's own; a line logged outside a run goes
    only where it went before. Idempotent."""
    from prefect.logging.handlers import APILogHandler

    log = logging.getLogger("crowdloop")
    if not any(getattr(h, "crowdloop_to_prefect", False) for h in log.handlers):
        handler = APILogHandler()
        handler.addFilter(_in_a_run)  # outside a run Prefect's handler warns that it has nowhere to send it
        handler.crowdloop_to_prefect = True
        log.addHandler(handler)


def _in_a_run(record: logging.LogRecord) -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None
