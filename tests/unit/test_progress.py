"""Progress bars: drawn on a terminal with rate and time left, quiet elsewhere, safe from threads."""

from __future__ import annotations

import io
import threading

from crowdloop.tasks import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_a_bar_shows_counts_rate_and_time_left(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    with progress.bar(200, "embedding", unit="text") as bar:
        for _ in range(4):
            bar.update(50)
        bar.note("loss 0.5")
    drawn = screen.getvalue()
    assert "embedding" in drawn and "200/200" in drawn and "text/s" in drawn
    assert "<" in drawn  # tqdm's [elapsed<left]


def test_elsewhere_no_bar_is_drawn_and_say_gets_lines_with_rate_and_time_left(capsys):
    lines = []
    with progress.bar(100, "pool predictions", unit="text", say=lines.append, every=0) as bar:
        bar.update(40)
        bar.update(60)
    assert capsys.readouterr().err == ""
    assert lines[0].startswith("pool predictions: 40/100 texts, ") and "left" in lines[0]
    assert lines[-1].startswith("pool predictions: 100/100 texts, ") and "left" not in lines[-1]
    quiet = []
    with progress.bar(100, "pool predictions", say=quiet.append) as bar:  # short steps say nothing
        bar.update(100)
    assert quiet == []


def test_updates_from_many_threads_are_all_counted():
    with progress.bar(8000, "arms", unit="round") as bar:
        threads = [threading.Thread(target=lambda: [bar.update(1) for _ in range(1000)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert bar.done == 8000


def test_track_counts_each_item_and_starts_from_what_was_done():
    lines = []
    assert list(progress.track(range(3, 6), "arm", unit="round", total=5, done=2, say=lines.append, every=0)) \
        == [3, 4, 5]
    assert lines[-1].startswith("arm: 5/5 rounds")


def test_a_terminal_of_no_width_gets_the_plain_lines_since_no_bar_would_show(monkeypatch):
    """A pseudo-terminal that reports 0 columns (`script`, some container shells): tqdm draws
    nothing there, so the step says its lines as it does in a log file."""
    import os

    class SizelessTerminal(Terminal):
        def fileno(self):
            return 2

    screen, lines = SizelessTerminal(), []
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((0, 0)))
    with progress.bar(100, "embedding", unit="text", say=lines.append, every=0) as bar:
        bar.update(40)
        bar.update(60)
    assert lines[0].startswith("embedding: 40/100 texts, ") and lines[-1].startswith("embedding: 100/100 texts")
    assert screen.getvalue() == ""

    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((80, 24)))
    with progress.bar(100, "embedding", unit="text", say=lines.append, every=0) as bar:
        bar.update(100)
    assert "100/100" in screen.getvalue() and len(lines) == 2  # drawn: no more lines
