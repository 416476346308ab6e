"""The round's MLflow calls in a process of their own, started before the round needs them.

A ``crowdloop round`` whose training step is cached spends most of its time importing:
Prefect and cleanlab to plan the round, then MLflow, its SQL store and matplotlib to log
it — about 3 s of a 12 s cached re-run on a slow machine, one after the other on one core.
:func:`running` starts a process that imports the MLflow side at once, on the other core,
while the round imports and plans; inside it :func:`call` runs ``track``'s functions in that
process, one at a time, and returns their result or raises their error here. Outside
:func:`running` (the Python API, a deployed flow, the tests' in-process rounds) :func:`call`
runs them in the calling process, as before. Only the ``crowdloop`` command opens it.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

_current: _Helper | None = None


@contextmanager
def running() -> Iterator[None]:
    """While open, :func:`call` runs in a helper process that began importing MLflow when this opened."""
    global _current
    helper = _Helper()
    _current = helper
    try:
        yield
    finally:
        _current = None
        helper.close()


def call(fn: Callable[..., T], /, *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in the helper process when one is running, else here.

    ``fn`` must be importable by name (a module-level function) and its arguments and result
    picklable; its exception is raised here with the helper's traceback as a note."""
    helper = _current
    return fn(*args, **kwargs) if helper is None else helper.call(fn, *args, **kwargs)


class HelperDied(RuntimeError):
    """The helper process ended in the middle of a call (killed, or out of memory)."""


class _Helper:
    def __init__(self):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no fork of Prefect's threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="crowdloop-mlflow", daemon=True)
        self._process.start()
        child.close()
        self._lock = threading.Lock()
        self._busy = False

    def call(self, fn, *args, **kwargs):
        with self._lock:
            self._busy = True
            try:
                self._conn.send((fn, args, kwargs))
                ok, value = self._conn.recv()
            except (EOFError, ConnectionError) as err:
                raise HelperDied(f"the MLflow helper process ended during {fn.__name__} "
                                 f"(exit code {self._process.exitcode})") from err
            self._busy = False
        if ok:
            return value
        raise value

    def close(self) -> None:
        """End the helper. An idle one (still importing, or between calls) is stopped at once;
        one whose call was interrupted here gets 30 s to finish writing it."""
        self._conn.close()  # the helper's next recv() sees the end and it returns
        if self._busy:
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


def _serve(conn) -> None:
    import gc
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the caller closes us

    # What track's calls import, loaded before the first call arrives.
    import matplotlib.figure  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import mlflow.tracking  # noqa: F401

    gc.freeze()  # the import-time objects: out of every collection, and of the one at exit
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except EOFError:
            return
        try:
            reply = (True, fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller, which raises it
            err.add_note("in the MLflow helper process:\n" + "".join(traceback.format_exception(err)).rstrip())
            reply = (False, err)
        try:
            conn.send(reply)
        except OSError:  # the caller is gone
            return
        except Exception as err:  # an exception or result that does not pickle: say so instead
            conn.send((False, RuntimeError(f"{fn.__name__} in the MLflow helper process: {reply[1]!r} "
                                           f"could not be sent back ({err})")))
