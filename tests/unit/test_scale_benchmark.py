"""benchmarks/scale.py files each result under the round it measured: it refuses a campaign that ran rounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCALE = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"


def test_a_work_folder_whose_campaign_ran_rounds_is_refused_before_anything_is_measured(tmp_path):
    """Run again on the folder of a run that failed after round 1, it ran round 2 as 'round 1'
    and reported round 1's metrics.json for it."""
    metrics = tmp_path / "campaign" / "data" / "rounds" / "001" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text("{}")
    done = subprocess.run([sys.executable, str(SCALE), "--work", str(tmp_path), "--out", str(tmp_path / "out.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{tmp_path / 'campaign'} has run round 1 already; this benchmark measures rounds 1 and 2" in done.stderr
    assert "throughput" not in done.stdout and not (tmp_path / "out.json").exists()


def test_a_sample_larger_than_the_pool_or_within_the_warm_up_is_refused_before_the_campaign_is_made(tmp_path):
    """--pool 1000 with the default --sample 2000 made the campaign, then failed in the throughput
    phase (pandas: 'Cannot take a larger sample than population'); --sample 64 divided by zero."""
    for args, words in ((["--pool", "1000"], "--sample is 2000: it must be more than 64"),
                        (["--pool", "1000", "--sample", "64"], "--sample is 64: it must be more than 64")):
        done = subprocess.run([sys.executable, str(SCALE), "--work", str(tmp_path), *args], capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 2 and words in done.stderr and "at most --pool (1000)" in done.stderr
        assert not (tmp_path / "campaign").exists()
