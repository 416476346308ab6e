"""Simulation summary: annotation ROI against random, on made-up curves."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdloop.tasks import report


def _curves():
    rows = []
    for seed in (0, 1):
        for strategy, gain, price in (("random", 0.05, 1.0), ("smart", 0.15, 2.0)):
            for round_, annotations in ((1, 100), (2, 150), (3, 200)):
                accuracy = 0.6 + gain * (annotations - 100) / 100
                rows.append({"strategy": strategy, "seed": seed, "round": round_, "annotations": annotations,
                             "test_accuracy": accuracy, "cost": price * annotations})
    return pd.DataFrame(rows)


def test_roi_per_100_annotations_and_per_unit_cost_against_random():
    table = report.roi(_curves(), baseline="random")
    assert table.loc["smart", "acc/100 ann"] == pytest.approx(0.15)
    assert table.loc["random", "acc/100 ann"] == pytest.approx(0.05)
    assert table.loc["smart", "acc/100 ann vs random"] == pytest.approx(0.10)
    assert table.loc["smart", "acc/cost"] == pytest.approx(0.15 / 200)  # 2.0 per annotation
    assert table.loc["smart", "acc/cost vs random"] == pytest.approx(0.15 / 200 - 0.05 / 100)


def test_summary_joins_roi_only_when_a_baseline_is_named():
    plain = report.summary(_curves(), at_rounds=[1, 3], target=0.7)
    assert "acc/100 ann" not in plain.columns
    with_roi = report.summary(_curves(), at_rounds=[1, 3], target=0.7, baseline="random")
    assert with_roi.loc["smart", "annotations to 70%"] == "200"
    assert with_roi.loc["random", "acc/100 ann vs random"] == 0
