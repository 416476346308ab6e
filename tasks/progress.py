"""Progress a person can read: a bar with the rate and the time left, for the long steps.

    with progress.bar(len(texts), "embedding", unit="text", say=log.info) as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk))

On a terminal (stderr is a TTY of some width) it is a tqdm bar on stderr: done/total, rate, elapsed and
time left; crowdloop's log lines print above it while it runs. Elsewhere (a pipe, a log
file, the tests) no bar is drawn; with ``say``, one line at most every ``every`` seconds
and one at the end says the same in words (``embedding: 120000/1000000 texts, 166 texts/s,
about 1:28:20 left``), so a scheduled run's log shows it too.

``update`` may be called from several threads at once (a parallel loop counting what
finished), and bars nest: an inner bar opened while another is drawn goes below it and
disappears when done.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

LOGGER = "crowdloop"
T = TypeVar("T")


class Bar:
    """Counts what is done of ``total``; see :func:`bar`."""

    def __init__(self, total: int, what: str, *, unit: str, say: Callable[[str], None] | None, every: float,
                 drawn=None, done: int = 0):
        self.total, self.what, self.unit, self.say, self.every = int(total), what, unit, say, every
        self.done = self.first = int(done)
        self.note_text = ""
        self._drawn = drawn  # the tqdm bar, or None when not on a terminal
        self._lock = threading.Lock()
        self._start = self._said = time.monotonic()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done (thread-safe)."""
        with self._lock:
            self.done += n
            if self._drawn is not None:
                self._drawn.update(n)
            elif self.say is not None and time.monotonic() - self._said >= self.every and self.done < self.total:
                self._said = time.monotonic()
                self.say(self.line())

    def note(self, text: str) -> None:
        """Show ``text`` beside the counts (e.g. the current loss) from now on."""
        with self._lock:
            self.note_text = text
            if self._drawn is not None:
                self._drawn.set_postfix_str(text, refresh=False)

    def line(self) -> str:
        """The state in words: ``what: done/total units, rate, about H:MM:SS left``."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (self.done - self.first) / elapsed
        text = f"{self.what}: {self.done}/{self.total} {self.unit}s, {_rate(rate, self.unit)}"
        if self.done < self.total:
            text += f", about {_clock((self.total - self.done) / rate)} left" if rate > 0 else ""
        else:
            text += f", {_clock(elapsed)}"
        return text + (f" ({self.note_text})" if self.note_text else "")


@contextmanager
def bar(total: int, what: str, *, unit: str = "item", say: Callable[[str], None] | None = None,
        every: float = 30.0, done: int = 0) -> Iterator[Bar]:
    """A progress bar over ``total`` units of ``what``, drawn on stderr only when it is a terminal.

    Parameters
    ----------
    total : how many units the step has (texts, steps, rounds).
    what : the step, as the bar's label (``embedding``, ``pool predictions``).
    unit : one unit's name, singular.
    say : where the plain-text line goes when no bar is drawn (e.g. ``log.info``); None: nowhere.
    every : seconds between plain-text lines.
    done : units already done before this run (a resumed step); they do not count in the rate.
    """
    with ExitStack() as stack:
        drawn = None
        if total > 0 and _on_terminal():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            outermost = not _open_bars()
            if outermost:  # log lines print above the bars while any is drawn
                stack.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger(LOGGER)]))
            # nested bars (one opened while another is drawn) go below it and vanish when done
            drawn = stack.enter_context(tqdm(total=total, initial=done, desc=what, unit=unit, file=sys.stderr,
                                             dynamic_ncols=True, leave=outermost, smoothing=0.1))
        counter = Bar(total, what, unit=unit, say=say, every=every, drawn=drawn, done=done)
        yield counter
        if drawn is None and say is not None and total > 0 and time.monotonic() - counter._start >= every:
            say(counter.line())


def track(items: Iterable[T], what: str, *, unit: str = "item", total: int | None = None, done: int = 0,
          say: Callable[[str], None] | None = None, every: float = 30.0) -> Iterator[T]:
    """Each of ``items``, counted on a :func:`bar` as it is taken (``total``: ``len(items)`` by default)."""
    items = list(items) if total is None and not hasattr(items, "__len__") else items
    with bar(len(items) if total is None else total, what, unit=unit, say=say, every=every, done=done) as counter:
        for item in items:
            yield item
            counter.update(1)


def _on_terminal() -> bool:
    """stderr is a terminal a bar shows on: a TTY that does not report 0 columns (a pseudo-terminal
    without a size, as `script`, some container shells and CI runners make, where tqdm draws nothing
    at all: the plain lines are said instead)."""
    stream = sys.stderr
    if not (getattr(stream, "isatty", None) and stream.isatty()):
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError):  # no file descriptor (a notebook's stream): its size is not known to be 0
        return True


def _open_bars() -> int:
    from tqdm import tqdm

    return len(getattr(tqdm, "_instances", ()))


def _rate(per_second: float, unit: str) -> str:
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.0f} {unit}s/s" if per_second >= 10 else f"{per_second:.1f} {unit}s/s"
    return f"{1 / per_second:.1f} s/{unit}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
