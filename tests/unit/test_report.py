"""Simulation summary: annotation ROI against random, on made-up curves."""

from __future__ import annotations

import numpy as np
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
    assert table.loc["smart", "acc/100 cost"] == pytest.approx(0.15 / 2)  # 2.0 per annotation
    assert table.loc["smart", "acc/100 cost vs random"] == pytest.approx(0.15 / 2 - 0.05 / 1)


def test_summary_joins_roi_only_when_a_baseline_is_named():
    plain = report.summary(_curves(), at_rounds=[1, 3], target=0.7)
    assert "acc/100 ann" not in plain.columns
    with_roi = report.summary(_curves(), at_rounds=[1, 3], target=0.7, baseline="random")
    assert with_roi.loc["smart", "annotations to 70%"] == "200"
    assert with_roi.loc["random", "acc/100 ann vs random"] == 0


def test_campaign_curve_leaves_out_rounds_without_a_model():
    rounds = pd.DataFrame({"round": [1, 2, 3], "annotations": [8, 16, 24],
                           "test_accuracy": [np.nan, 0.6, 0.7], "test_macro_f1": [np.nan, 0.5, 0.65]})
    figure = report.plot_campaign(rounds, title="t")
    axes = figure.axes[0]
    assert [list(line.get_xdata()) for line in axes.lines] == [[16, 24], [16, 24]]
    assert [text.get_text() for text in axes.texts] == ["2", "3"]
    cold = report.plot_campaign(rounds[["round", "annotations"]].iloc[:1], title="cold start")
    assert len(cold.axes[0].lines) == 0
