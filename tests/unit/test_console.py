"""crowdloop's lines on stderr (crowdloop/console.py)."""

from __future__ import annotations

import logging

from crowdloop import console


def test_a_flow_run_process_that_set_up_nothing_shows_crowdloop_s_lines_on_stderr(monkeypatch, capsys):
    log = logging.getLogger("crowdloop")
    for name, value in (("handlers", []), ("level", logging.NOTSET), ("propagate", True)):
        monkeypatch.setattr(log, name, value)  # as in a process a Prefect worker started for a flow run
    console.log_to_stderr_if_unheard(logging.INFO)
    log.info("round 3: test accuracy 0.9")
    assert "round 3: test accuracy 0.9" in capsys.readouterr().err
    shown = list(log.handlers)
    console.log_to_stderr_if_unheard(logging.INFO)  # set up already (the command, or again): nothing added
    assert log.handlers == shown


def test_the_prefect_handler_alone_does_not_count_as_showing_the_lines(monkeypatch, capsys):
    """log_to_prefect sends lines to the Prefect API only; a process that has just it still gets stderr."""
    log = logging.getLogger("crowdloop")
    for name, value in (("handlers", []), ("level", logging.NOTSET), ("propagate", True)):
        monkeypatch.setattr(log, name, value)
    console.log_to_prefect()
    console.log_to_prefect()  # idempotent
    assert len(log.handlers) == 1
    console.log_to_stderr_if_unheard(logging.INFO)
    assert len(log.handlers) == 2
    log.info("outside any run: stderr only, and no warning that Prefect has nowhere to send it")
    assert "outside any run" in capsys.readouterr().err
