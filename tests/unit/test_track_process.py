"""track_process: MLflow's calls in a helper process while one runs, here otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from crowdloop.tasks import track_process


def test_without_a_helper_calls_run_here():
    assert track_process.call(os.getpid) == os.getpid()


def test_inside_running_calls_run_in_the_helper_and_return_their_result():
    with track_process.running():
        helper_pid = track_process.call(os.getpid)
        assert helper_pid != os.getpid()
        assert track_process.call(os.getpid) == helper_pid  # one process for every call
        assert track_process.call(divmod, 17, 5) == (3, 2)
        assert track_process.call(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    assert track_process.call(os.getpid) == os.getpid()  # closed: back to this process


def test_the_helpers_error_is_raised_here_with_its_traceback():
    with track_process.running():
        with pytest.raises(ValueError, match="invalid literal") as raised:
            track_process.call(int, "not a number")
        assert "in the MLflow helper process" in "".join(raised.value.__notes__)
        assert track_process.call(int, "7") == 7  # the helper survives an error


def test_a_result_that_does_not_pickle_is_an_error_not_a_hang():
    with track_process.running():
        with pytest.raises(RuntimeError, match="could not be sent back"):
            track_process.call(threading.Lock)  # a lock does not pickle
        assert track_process.call(abs, -2) == 2


def test_a_helper_that_dies_is_a_clear_error():
    with track_process.running():
        pid = track_process.call(os.getpid)
        with pytest.raises(track_process.HelperDied, match="ended during _exit"):
            track_process.call(os._exit, 3)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_closing_stops_a_helper_that_is_still_importing_without_waiting_for_it():
    with track_process.running():
        process = track_process._current._process
    # stopped by SIGTERM, not left to finish its imports and exit on its own (exit code 0)
    assert not process.is_alive() and process.exitcode == -signal.SIGTERM


def test_the_command_keeps_cleanlab_from_importing_datalab_and_datasets():
    code = ("import sys\n"
            "from crowdloop import cli\n"
            "cli.without_cleanlab_datalab()\n"
            "import cleanlab.multiannotator\n"
            "print('datasets' in sys.modules, type(cleanlab.Datalab).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "DatalabUnavailable"]
