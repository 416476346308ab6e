"""Simulation summaries on made-up curves: the metric chosen, ROI against random, paired comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import report


def _curves():
    rows = []
    for seed in (0, 1):
        for strategy, gain, price in (("random", 0.05, 1.0), ("smart", 0.15, 2.0)):
            for round_, count in ((1, 100), (2, 150), (3, 200)):
                accuracy = 0.6 + gain * (count - 100) / 100
                rows.append({"strategy": strategy, "seed": seed, "round": round_, "annotations": count,
                             "test_accuracy": accuracy, "test_macro_f1": accuracy - 0.1,
                             "test_balanced_accuracy": accuracy - 0.05, "cost": price * count})
    return pd.DataFrame(rows)


def test_roi_per_100_annotations_and_per_unit_cost_against_random():
    table = report.roi(_curves(), baseline="random", metric="accuracy")
    assert table.loc["smart", "gain/100 ann"] == pytest.approx(0.15)
    assert table.loc["random", "gain/100 ann"] == pytest.approx(0.05)
    assert table.loc["smart", "gain/100 ann vs random"] == pytest.approx(0.10)
    assert table.loc["smart", "gain/100 cost"] == pytest.approx(0.15 / 2)  # 2.0 per annotation
    assert table.loc["smart", "gain/100 cost vs random"] == pytest.approx(0.15 / 2 - 0.05 / 1)


def test_summary_reads_the_chosen_metric_and_shows_the_others_beside_it():
    plain = report.summary(_curves(), at_rounds=[1, 3], target=0.7, metric="accuracy")
    assert "gain/100 ann" not in plain.columns
    assert plain.loc["smart", "acc@3"] == "0.750 ± 0.000" and plain.loc["smart", "F1@3"] == "0.650"
    assert plain.loc["smart", "bal@3"] == "0.700"
    with_roi = report.summary(_curves(), at_rounds=[1, 3], target=0.7, baseline="random", metric="accuracy")
    assert with_roi.loc["smart", "annotations to acc 0.7"] == "200"
    assert with_roi.loc["random", "gain/100 ann vs random"] == 0
    f1 = report.summary(_curves(), at_rounds=[3], target=0.6, metric="macro_f1")
    assert f1.loc["smart", "F1@3"] == "0.650 ± 0.000" and f1.loc["smart", "annotations to F1 0.6"] == "200"
    assert f1.loc["random", "annotations to F1 0.6"] == "never"
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        report.summary(_curves(), at_rounds=[3], target=0.7, metric="f2")


def test_summary_shows_ranking_signal_only_where_it_differs_from_signal():
    curves = _curves().assign(signal=lambda c: (c["round"] == 3).astype(float))
    same = report.summary(curves.assign(ranking_signal=curves["signal"]), at_rounds=[3], target=0.7)
    assert same.loc["smart", "model signal"] == "33%" and "ranking signal" not in same.columns
    ranked = curves.assign(ranking_signal=(curves["round"] >= 2).astype(float))
    table = report.summary(ranked, at_rounds=[3], target=0.7)
    assert table.loc["smart", "model signal"] == "33%" and table.loc["smart", "ranking signal"] == "67%"
    assert "ranking signal: rounds whose class-weighted model" in report.summary_text(table, metric="accuracy",
                                                                                     target=0.7)
    assert "ranking signal" not in report.summary_text(same, metric="accuracy", target=0.7)


def test_comparison_pairs_seeds_and_finds_the_worst_round():
    curves = _curves()
    # seed 1: smart is behind random in round 1 by 0.1
    curves.loc[(curves["strategy"] == "smart") & (curves["seed"] == 1) & (curves["round"] == 1),
               "test_macro_f1"] -= 0.1
    result = report.comparison(curves, "smart", "random", metric="macro_f1")
    # differences (smart - random): round 1: 0 and -0.1; round 2: 0.05, 0.05; round 3: 0.1, 0.1
    assert result["mean_difference"] == pytest.approx((0 - 0.1 + 0.05 * 2 + 0.1 * 2) / 6)
    per_seed = np.array([(0 + 0.05 + 0.1) / 3, (-0.1 + 0.05 + 0.1) / 3])
    assert result["mean_difference_se"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(2))
    assert result["worst_round"] == 1 and result["worst_difference"] == pytest.approx(-0.05)
    assert result["rounds_won"] == 2 and result["rounds_compared"] == 3
    assert result["rounds_behind"] == 0  # round 1: -0.05 with a standard error of 0.05
    curves.loc[(curves["strategy"] == "smart") & (curves["seed"] == 0) & (curves["round"] == 1),
               "test_macro_f1"] -= 0.08  # round 1: -0.08 and -0.1, -0.09 ± 0.01
    behind = report.comparison(curves, "smart", "random", metric="macro_f1")
    # one round of three, 9 standard errors down but with 2 seeds (1 degree of freedom): p 0.035 > 0.023 / 3
    assert behind["rounds_behind"] == 1 and behind["rounds_behind_holm"] == 0
    window = report.comparison(curves, "smart", "random", metric="macro_f1", rounds=(2, 3))
    assert window["rounds_compared"] == 2 and window["worst_round"] == 2


def test_behind_holm_reads_all_rounds_at_once():
    se = np.full(20, 0.01)
    # 5 seeds: −3.14 standard errors (HS-Brexit's round 9 at 5 seeds) is behind alone, not among 20 rounds
    one = np.zeros(20)
    one[8] = -0.0314
    assert report.behind_holm(one, se, 5) == 0 and int((one < -2 * se).sum()) == 1
    far = one.copy()
    far[3] = -0.2  # 20 standard errors: p 2e-5, below 0.023 / 20
    assert report.behind_holm(far, se, 5) == 1
    far[5] = -0.06  # 6 standard errors: p 0.0019, above 0.023 / 19, so the step-down stops at one
    assert report.behind_holm(far, se, 5) == 1
    far[5] = -0.2
    assert report.behind_holm(far, se, 5) == 2
    assert report.behind_holm(far, se, 1) == 0  # one seed: no standard error to read
    assert report.behind_holm(np.zeros(3), np.zeros(3), 5) == 0  # every seed equal to the baseline
    assert report.behind_holm(np.array([-0.01, 0, 0]), np.zeros(3), 5) == 1  # every seed behind by the same


def test_plot_draws_one_panel_per_metric():
    figure = report.plot(_curves(), title="t")
    assert [axes.get_ylabel() for axes in figure.axes] == ["accuracy", "macro f1", "balanced accuracy"]
    assert all(len(axes.lines) == 2 for axes in figure.axes)


def test_campaign_curve_leaves_out_rounds_without_a_model():
    rounds = pd.DataFrame({"round": [1, 2, 3], "annotations": [8, 16, 24],
                           "test_accuracy": [np.nan, 0.6, 0.7], "test_macro_f1": [np.nan, 0.5, 0.65]})
    figure = report.plot_campaign(rounds, title="t")
    axes = figure.axes[0]
    assert [list(line.get_xdata()) for line in axes.lines] == [[16, 24], [16, 24]]
    assert [text.get_text() for text in axes.texts] == ["2", "3"]
    cold = report.plot_campaign(rounds[["round", "annotations"]].iloc[:1], title="cold start")
    assert len(cold.axes[0].lines) == 0


def test_summary_of_one_seed_shows_no_spread_and_a_round_without_a_model_shows_n_a():
    one = _curves().query("seed == 0").copy()
    one.loc[one["round"] == 1, "test_accuracy"] = np.nan  # a cold start: nothing labeled, no model scored
    table = report.summary(one, at_rounds=[1, 3], target=0.7, metric="accuracy")
    assert table.loc["smart", "acc@3"] == "0.750" and table.loc["smart", "acc@1"] == "n/a"
    two = report.summary(_curves(), at_rounds=[3], target=0.7, metric="accuracy")
    assert two.loc["smart", "acc@3"] == "0.750 ± 0.000"  # two seeds that agree: a spread of 0, shown
