"""Prefect's run-engine lines that repeat what the command says itself in one line are dropped."""

from __future__ import annotations

import logging

from crowdloop.flows import steps
from crowdloop.tasks.errors import DataError


def _kept(message: str, error: BaseException | None = None) -> bool:
    steps.hide_user_error_tracebacks()
    hider = next(f for f in logging.getLogger("prefect.flow_runs").filters if isinstance(f, steps._HideUserErrors))
    record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1, message, None,
                               (type(error), error, None) if error else None)
    return hider.filter(record)


def test_a_user_error_and_a_stopped_run_are_dropped_and_every_other_failure_is_kept():
    assert not _kept("Crash detected! Execution was aborted by an interrupt signal.")  # Ctrl-C
    assert not _kept("Crash detected! Execution was aborted by a termination signal.")  # SIGTERM
    assert not _kept("Finished in state Crashed('Execution was aborted by an interrupt signal.')")
    assert not _kept("Finished in state Failed('Task run encountered an exception DataError: one class')")
    assert not _kept("Finished in state Failed('Flow run encountered an exception: IngestError: bad file')")
    assert not _kept("Encountered exception during execution:", DataError("one class"))
    # not crowdloop's to report: Prefect's line is all the user gets about them
    assert _kept("Crash detected! Execution was interrupted by an unexpected exception: MemoryError")
    assert _kept("Finished in state Crashed('Execution was interrupted by an unexpected exception: MemoryError')")
    assert _kept("Finished in state Failed('Task run encountered an exception ValueError: bug')")
    assert _kept("Encountered exception during execution:", ValueError("bug"))
