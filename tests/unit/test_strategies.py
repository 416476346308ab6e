"""Every strategy on a small hand-made case whose right pick is known; lower score = asked first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.consensus.base import vote_counts
from crowdloop.tasks.scoring import strategies, uncertainty
from crowdloop.tasks.scoring.strategies import ScoreInputs

NAN = np.nan


def _labels(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["a", "b", "c"], dtype=float,
                        index=pd.Index([f"l{i}" for i in range(len(rows))], name="example_id"))


# l0: annotators split 0/1; l1: both say 0. The model is equally unsure of both.
LABELS = _labels([[0, 1, NAN], [0, 0, NAN]])
PROBS = np.array([[0.6, 0.4], [0.6, 0.4]])
# u0 confident, u1 a coin flip, u2 leaning.
UNLABELED = np.array([[0.95, 0.05], [0.52, 0.48], [0.7, 0.3]])


def _pool(**fields) -> ScoreInputs:
    base = dict(labels_multiannotator=LABELS, n_unlabeled=3, n_classes=2, pred_probs=PROBS,
                pred_probs_unlabeled=UNLABELED, batch_size=1)
    return ScoreInputs(**(base | fields))


@pytest.mark.parametrize("name", ["least_confidence", "margin", "entropy"])
def test_uncertainty_asks_the_coin_flip_first_and_relabels_the_disputed_example(name):
    s_l, s_u = strategies.BUILTIN[name](_pool(), seed=0)
    assert np.argmin(s_u) == 1 and np.argmax(s_u) == 0
    assert s_l[0] < s_l[1]  # same model probabilities: the split annotators decide
    assert ((0 <= np.r_[s_l, s_u]) & (np.r_[s_l, s_u] <= 1)).all()


def test_least_confidence_margin_and_entropy_disagree_where_they_should():
    # a: two classes tied, third impossible; b: spread over three classes.
    probs = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert np.argmin(uncertainty.least_confidence(probs)) == 1
    assert np.argmin(uncertainty.margin(probs)) == 0
    assert np.argmin(uncertainty.entropy(probs)) == 1


def test_a_labeled_example_mixes_its_labels_in_as_pseudo_counts():
    counts = vote_counts(LABELS.to_numpy(dtype=float), 2)
    np.testing.assert_array_equal(counts, [[1, 1], [2, 0]])
    mixed = uncertainty.with_annotations(PROBS, counts)
    np.testing.assert_allclose(mixed, [[1.6 / 3, 1.4 / 3], [2.6 / 3, 0.4 / 3]])


def test_qbc_asks_where_the_fold_models_vote_differently():
    agree, split = [0.9, 0.1], [0.1, 0.9]
    fold_u = np.array([[agree, agree, agree], [agree, split, agree], [agree, agree, agree]])  # (3 models, U, K)
    fold_l = np.array([[agree, agree]] * 3)
    s_l, s_u = strategies.qbc(_pool(fold_pred_probs=fold_l, fold_pred_probs_unlabeled=fold_u), seed=0)
    assert np.argmin(s_u) == 1 and s_u[0] == s_u[2] == 1.0
    assert s_l[0] < s_l[1]  # l0's annotators vote 0 and 1 beside the models' 0s


def test_bald_prefers_disagreeing_confident_samples_over_agreeing_unsure_ones():
    # u0: every sample says 50/50 (aleatoric: entropy is maximal, information zero);
    # u1: samples confident but contradicting each other (epistemic); u2: all agree and sure.
    samples = np.array([
        [[0.5, 0.5], [0.95, 0.05], [0.9, 0.1]],
        [[0.5, 0.5], [0.05, 0.95], [0.9, 0.1]],
    ])
    labeled = np.stack([PROBS, PROBS])
    _, s_u = strategies.bald(_pool(posterior_probs=labeled, posterior_probs_unlabeled=samples), seed=0)
    assert np.argmin(s_u) == 1
    assert s_u[0] == pytest.approx(1.0) and s_u[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="S>=2"):
        uncertainty.bald(samples[:1])


def test_coreset_picks_the_point_far_from_everything_labeled():
    covered = np.array([[1.0, 0.0], [0.9, 0.1]])
    pool_points = np.array([[0.95, 0.05], [-1.0, 0.0], [0.8, 0.2]])
    s_l, s_u = strategies.coreset(_pool(embeddings=covered, embeddings_unlabeled=pool_points), seed=0)
    assert np.argmin(s_u) == 1
    assert s_l.min() >= 1 > s_u.max()  # labeled examples come after every unlabeled one


def test_coreset_second_pick_covers_what_the_first_left_open():
    covered = np.array([[0.0, 0.0]])
    far_a, far_a_twin, far_b = [10.0, 0.0], [9.9, 0.0], [0.0, 9.0]
    pool_points = np.array([far_a, far_a_twin, far_b])
    _, s_u = strategies.coreset(_pool(embeddings=covered[:1].repeat(2, 0), embeddings_unlabeled=pool_points,
                                      batch_size=2), seed=0)
    assert list(np.argsort(s_u))[:2] == [0, 2]  # the twin of the first pick waits


def test_badge_starts_at_the_largest_gradient_and_never_repeats_a_direction():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.55, 0.45], [0.99, 0.01]])
    for seed in range(5):
        _, s_u = strategies.badge(_pool(n_unlabeled=4, pred_probs_unlabeled=probs, embeddings_unlabeled=x,
                                        batch_size=2), seed=seed)
        order = list(np.argsort(s_u))
        assert order[0] in (0, 1)  # the most uncertain rows have the longest gradient embedding
        assert order[1] not in (0, 1)  # its twin has distance 0: never the second seed


def test_cold_start_takes_the_example_nearest_each_cluster_centre():
    centre_a = [[0.0, 0.0], [0.2, 0.0], [-0.2, 0.0], [0.0, 0.21]]
    centre_b = [[5.0, 5.0], [5.3, 5.0], [4.7, 5.0]]
    empty = LABELS.iloc[:0]
    pool = ScoreInputs(labels_multiannotator=empty, n_unlabeled=7, n_classes=2,
                       embeddings_unlabeled=np.array(centre_a + centre_b), batch_size=2)
    s_l, s_u = strategies.cold_start(pool, seed=0)
    assert s_l.shape == (0,)
    assert set(np.argsort(s_u)[:2]) == {0, 4}


def test_random_is_seeded_and_good_random_asks_unlabeled_then_least_annotated_first():
    s_l, s_u = strategies.random(_pool(), seed=3)
    np.testing.assert_array_equal(np.r_[s_l, s_u], np.random.default_rng(3).random(5))
    labels = _labels([[0, 1, 1], [0, NAN, NAN], [1, 1, NAN]])
    g_l, g_u = strategies.good_random(_pool(labels_multiannotator=labels, pred_probs=None), seed=3)
    assert g_u.max() < 1 <= g_l.min()
    assert g_l[1] < g_l[2] < g_l[0]  # 1, 2 and 3 annotations


def test_activelab_strategies_relabel_the_disputed_example_and_ask_the_coin_flip():
    s_l, s_u = strategies.activelab(_pool(), seed=0)
    assert s_l[0] < s_l[1] and np.argmin(s_u) == 1
    fold_l, fold_u = np.stack([PROBS] * 3), np.stack([UNLABELED, UNLABELED * 0 + [0.5, 0.5], UNLABELED])
    e_l, e_u = strategies.activelab_ensemble(_pool(fold_pred_probs=fold_l, fold_pred_probs_unlabeled=fold_u),
                                             seed=0)
    assert e_l[0] < e_l[1] and np.argmin(e_u) == 1


def test_a_strategy_without_its_inputs_says_what_is_missing():
    with pytest.raises(ValueError, match="coreset strategy needs embeddings, embeddings_unlabeled"):
        strategies.coreset(_pool(), seed=0)
    with pytest.raises(ValueError, match="qbc strategy needs fold_pred_probs"):
        strategies.qbc(_pool(), seed=0)


def test_agreement_asks_what_random_asks_but_settles_ties_first():
    # l0: tie 0/1; l1: 0,0,0 unanimous; l2: one vote for 1; l3: one vote for 0; l4: two agreeing votes;
    # l5: a three-way tie; l6: 1,1,0, a majority
    labels = _labels([[0, 1, NAN], [0, 0, 0], [1, NAN, NAN], [0, NAN, NAN], [0, 0, NAN], [0, 1, 2], [1, 1, 0]])
    inputs = _pool(labels_multiannotator=labels, n_unlabeled=40, n_classes=3, pred_probs=None,
                   pred_probs_unlabeled=None)
    for seed in range(20):
        s_l, s_u = strategies.agreement(inputs, seed=seed)
        r_l, r_u = strategies.random(inputs, seed=seed)
        # random's draws, so every batch size takes the same first labels and as many re-labels
        np.testing.assert_array_equal(np.sort(s_l), np.sort(r_l))
        np.testing.assert_array_equal(s_u, r_u)
        order = list(np.argsort(s_l))
        assert set(order[:2]) == {0, 5}  # the ties take the two smallest draws
        others = [i for i in range(7) if i not in (0, 5)]
        assert order[2:] == sorted(others, key=lambda i: r_l[i])  # the rest keep random's order


def test_agreement_without_ties_is_random():
    labels = _labels([[0, 0, NAN], [1, NAN, NAN], [1, 1, 0]])
    inputs = _pool(labels_multiannotator=labels, n_unlabeled=4, pred_probs=None, pred_probs_unlabeled=None)
    for seed in range(5):
        np.testing.assert_array_equal(np.r_[strategies.agreement(inputs, seed=seed)],
                                      np.r_[strategies.random(inputs, seed=seed)])
    empty = _pool(labels_multiannotator=labels.iloc[:0], n_unlabeled=4, pred_probs=None, pred_probs_unlabeled=None)
    s_l, s_u = strategies.agreement(empty, seed=1)
    assert s_l.shape == (0,) and s_u.shape == (4,)


def test_auto_is_the_signal_strategy_with_signal_and_the_model_free_strategy_without():
    from crowdloop.tasks.scoring import effective_strategy

    with_signal, without = _pool(model_signal=True), _pool(model_signal=False)
    assert effective_strategy("auto", with_signal, cold_start=True, no_signal="agreement") == "activelab"
    assert effective_strategy("auto", with_signal, cold_start=True, signal="margin") == "margin"
    assert effective_strategy("auto", with_signal, cold_start=True, signal="margin") == "margin"
    assert effective_strategy("auto", without, cold_start=True, signal="margin") == "agreement"
    assert effective_strategy("auto", without, cold_start=True, no_signal="agreement") == "agreement"
    assert effective_strategy("auto", without, cold_start=True, no_signal="good_random") == "good_random"
    nothing = _pool(labels_multiannotator=LABELS.iloc[:0], pred_probs=None, pred_probs_unlabeled=None,
                    embeddings_unlabeled=np.eye(3))
    assert effective_strategy("auto", nothing, cold_start=True, no_signal="agreement") == "cold_start"
