"""files.read_parquet: what pandas reads, opened by Arrow itself (no Python file object for
Arrow's threads to release as the interpreter exits: see that function)."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import files


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"example_id": ["a", "b", "c"], "label": [0, 2, 1], "weight": [0.5, np.nan, 1.0],
                         "annotator": pd.Series(["x", None, "z"], dtype=object),
                         "at": pd.to_datetime(["2026-01-01", "2026-01-02", None], utc=True)})


def test_reads_what_pandas_reads(tmp_path, frame):
    path = tmp_path / "frame.parquet"
    files.write_parquet_atomic(path, frame)
    read = files.read_parquet(path)
    pd.testing.assert_frame_equal(read, pd.read_parquet(path))
    pd.testing.assert_frame_equal(read, frame)


def test_keeps_a_stored_index(tmp_path, frame):
    path = tmp_path / "indexed.parquet"
    frame.set_index("example_id").to_parquet(path)
    pd.testing.assert_frame_equal(files.read_parquet(path), frame.set_index("example_id"))


def test_opens_no_python_file(tmp_path, frame, monkeypatch):
    path = tmp_path / "frame.parquet"
    files.write_parquet_atomic(path, frame)

    def no_open(*args, **kwargs):
        raise AssertionError("a Python file object was opened for Arrow")

    monkeypatch.setattr(builtins, "open", no_open)
    pd.testing.assert_frame_equal(files.read_parquet(path), frame)
    with pytest.raises(AssertionError, match="Python file object"):  # what pandas does, and this avoids
        pd.read_parquet(path)


def test_a_missing_or_broken_file_raises_as_pandas_does(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.read_parquet(tmp_path / "missing.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"junk")
    with pytest.raises(ValueError, match="broken.parquet"):
        files.read_parquet(broken)
