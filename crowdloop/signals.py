"""SIGTERM (a timeout, a service manager) ends the `crowdloop` command promptly and cleanly.

The handler raises :class:`Terminated` in the main thread: the command unwinds (a round not
yet committed is discarded, Prefect marks its run Crashed, the temporary server stops at
exit) and exits with 143. A deadline makes sure it does not hang on the way out.
"""

from __future__ import annotations

import os
import signal
import threading

# After SIGTERM, at most this many seconds of orderly stopping (Prefect marks the run Crashed,
# its temporary server stops); then crowdloop's child processes are killed and it exits.
TERM_GRACE_SECONDS = 5.0


class Terminated(BaseException):
    """SIGTERM arrived: unwind (a round not yet committed is discarded) and exit with 143.
    A BaseException, so that no ``except Exception`` takes it for a failure to handle."""


def stop_on_sigterm() -> None:
    """SIGTERM ends crowdloop promptly and takes its child processes with it.

    The handler raises :class:`Terminated` in the main thread. Inside a flow run Prefect puts
    its own handler first (it marks the run Crashed, then passes the signal on to this one),
    so the deadline is armed from the interpreter's signal wake-up pipe, which sees every
    signal whoever handles it: after TERM_GRACE_SECONDS the children (Prefect's temporary
    server, git, DVC) are killed and the process exits, however far the orderly stop got.
    Only in the main thread of the process (the command line), never under pytest's own handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=_deadline_on_sigterm, args=(read_end,), daemon=True, name="crowdloop-sigterm").start()


def exiting() -> None:
    """The command's work is done and the process is on its way out (atexit handlers: Prefect's
    temporary server stops, logs flush): a SIGTERM now has nothing left to undo, and raising
    :class:`Terminated` inside those handlers would only print tracebacks. It is noted instead, so
    the deadline of :func:`stop_on_sigterm` still ends the process should the exit take longer than
    TERM_GRACE_SECONDS. Nothing changes where :func:`stop_on_sigterm` did not arm the handler."""
    if signal.getsignal(signal.SIGTERM) is _raise_terminated:
        signal.signal(signal.SIGTERM, _noted)


def _raise_terminated(signum, frame):
    raise Terminated()


def _noted(signum, frame):
    """SIGTERM while exiting: the wake-up pipe has told the deadline; nothing to raise."""


def _deadline_on_sigterm(read_end: int) -> None:
    while os.read(read_end, 1) != bytes([signal.SIGTERM]):
        pass
    threading.Event().wait(TERM_GRACE_SECONDS)
    _kill_children()
    os._exit(128 + signal.SIGTERM)


def _kill_children() -> None:
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        child.terminate()
    _, alive = psutil.wait_procs(children, timeout=2)
    for child in alive:
        child.kill()
