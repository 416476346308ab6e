"""ActiveLab (single model and fold ensemble) ranks uncertain examples first; random is seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.scoring.activelab import activelab, activelab_ensemble
from crowdloop.tasks.scoring.strategies import random_scores

NAN = np.nan


def _labeled():
    """e0: annotators split and the model unsure; e1..e5: annotators agree, model confident."""
    labels = pd.DataFrame(
        {"a": [0, 0, 1, 2, 0, 1], "b": [1, 0, 1, 2, 0, 1], "c": [NAN, 0, 1, 2, NAN, NAN]},
        index=pd.Index([f"e{i}" for i in range(6)], name="example_id"),
        dtype=float,
    )
    probs = np.array(
        [[0.4, 0.35, 0.25], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05],
         [0.05, 0.05, 0.9], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]
    )
    return labels, probs


UNLABELED = np.array([[0.9, 0.05, 0.05], [0.34, 0.33, 0.33], [0.6, 0.3, 0.1]])


def test_activelab_returns_one_score_per_example_in_each_pool():
    labels, probs = _labeled()
    scores, scores_unlabeled = activelab(labels, probs, UNLABELED)
    assert scores.shape == (6,)
    assert scores_unlabeled.shape == (3,)
    both = np.concatenate([scores, scores_unlabeled])
    assert ((both > 0) & (both < 1)).all()


def test_activelab_ranks_a_disputed_uncertain_example_before_an_agreed_confident_one():
    labels, probs = _labeled()
    scores, _ = activelab(labels, probs, UNLABELED)
    assert scores[0] < scores[1]
    assert np.argmin(scores) == 0


def test_activelab_ranks_an_uncertain_unlabeled_example_before_a_confident_one():
    labels, probs = _labeled()
    _, scores_unlabeled = activelab(labels, probs, UNLABELED)
    assert scores_unlabeled[1] < scores_unlabeled[2] < scores_unlabeled[0]


def test_activelab_with_an_empty_unlabeled_pool():
    labels, probs = _labeled()
    scores, scores_unlabeled = activelab(labels, probs, np.zeros((0, 3)))
    assert scores.shape == (6,) and scores_unlabeled.shape == (0,)
    np.testing.assert_allclose(scores, activelab(labels, probs, UNLABELED)[0])


def test_activelab_without_labeled_examples_averages_model_confidence_with_chance():
    empty = pd.DataFrame(index=pd.Index([], name="example_id"), dtype=float)
    scores, scores_unlabeled = activelab(empty, np.zeros((0, 3)), UNLABELED)
    assert scores.shape == (0,)
    np.testing.assert_allclose(scores_unlabeled, (UNLABELED.max(axis=1) + 1 / 3) / 2)


def test_activelab_prints_nothing_when_an_annotator_shares_no_example(capsys):
    labels, probs = _labeled()
    labels["solo"] = NAN
    labels.loc["e5", ["a", "b", "solo"]] = [NAN, NAN, 1]
    scores, _ = activelab(labels, probs, UNLABELED)
    assert np.isfinite(scores).all()
    assert capsys.readouterr().out == ""


def test_activelab_rejects_mismatched_class_counts():
    labels, probs = _labeled()
    with pytest.raises(ValueError, match="pred_probs_unlabeled has 2"):
        activelab(labels, probs, np.array([[0.5, 0.5]]))


def test_random_scores_are_uniform_draws_from_the_seed():
    labeled, unlabeled = random_scores(4, 3, seed=7)
    expected = np.random.default_rng(7).random(7)
    np.testing.assert_array_equal(np.concatenate([labeled, unlabeled]), expected)
    again = random_scores(4, 3, seed=7)
    np.testing.assert_array_equal(again[0], labeled)
    assert not np.array_equal(random_scores(4, 3, seed=8)[0], labeled)


def test_the_ensemble_ranks_the_example_its_models_disagree_on_first():
    labels, probs = _labeled()
    agree = np.stack([UNLABELED, UNLABELED, UNLABELED])
    # pool example 0: every model sure of class 0; example 2: the models contradict each other
    split = agree.copy()
    split[:, 2] = [[0.94, 0.04, 0.02], [0.02, 0.95, 0.03], [0.03, 0.02, 0.95]]
    fold = np.stack([probs, probs, probs])
    given = split.copy()
    scores, scores_unlabeled = activelab_ensemble(labels, fold, split)
    np.testing.assert_array_equal(split, given)  # cleanlab rescales in place: we pass copies
    assert scores.shape == (6,) and scores_unlabeled.shape == (3,)
    assert scores_unlabeled[2] < scores_unlabeled[0]
    assert np.argmin(scores) == 0  # the disputed labeled example, as with one model


def test_the_ensemble_rejects_mismatched_model_counts():
    labels, probs = _labeled()
    with pytest.raises(ValueError, match="same P >= 2 models"):
        activelab_ensemble(labels, np.stack([probs, probs]), np.stack([UNLABELED] * 3))


# ------------------------------------------------- the temperature, and everything else cleanlab's

def _campaign(seed: int, n_classes: int = 2, n_rows: int = 120, n_annotators: int = 4):
    """Generated labels (some rows labeled once, some up to four times, annotators 80 % right) and an
    underconfident model's probabilities for them and for an unlabeled pool."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_rows + 40)
    logits = rng.normal(0, 1, (n_rows + 40, n_classes))
    logits[np.arange(len(truth)), truth] += 1.5
    probs = np.exp(0.3 * logits) / np.exp(0.3 * logits).sum(axis=1, keepdims=True)
    values = np.full((n_rows, n_annotators), NAN)
    for row in range(n_rows):
        who = rng.choice(n_annotators, size=1 + (row % 4 == 0) * rng.integers(1, n_annotators), replace=False)
        right = rng.random(len(who)) < 0.8
        values[row, who] = np.where(right, truth[row], (truth[row] + 1 + rng.integers(0, n_classes - 1, len(who)))
                                    % n_classes)
    labels = pd.DataFrame(values, columns=[f"a{i}" for i in range(n_annotators)],
                          index=pd.Index([f"e{i}" for i in range(n_rows)], name="example_id"))
    return labels, probs[:n_rows], probs[n_rows:]


def test_apart_from_the_temperature_the_scores_are_cleanlabs(monkeypatch):
    from cleanlab.internal.multiannotator_utils import find_best_temp_scaler
    from cleanlab.multiannotator import get_active_learning_scores, get_active_learning_scores_ensemble

    import crowdloop.tasks.scoring.activelab as module

    monkeypatch.setattr(module, "best_temperature", find_best_temp_scaler)
    for n_classes in (2, 3):
        labels, probs, unlabeled = _campaign(1, n_classes)
        ours = activelab(labels, probs, unlabeled)
        theirs = get_active_learning_scores(labels.to_numpy(), probs, unlabeled.copy())
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)
        folds = np.stack([probs, probs[::-1].copy(), np.roll(probs, 1, axis=0)])
        folds_u = np.stack([unlabeled, unlabeled[::-1].copy(), np.roll(unlabeled, 1, axis=0)])
        ours = activelab_ensemble(labels, folds, folds_u, seed=3)
        theirs = get_active_learning_scores_ensemble(labels.to_numpy(), folds.copy(), folds_u.copy())
        np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)


def test_the_scores_do_not_depend_on_the_order_of_the_classes():
    # cleanlab 2.9.0's find_best_temp_scaler counted a single label of class 1 as a vote for class 0,
    # so swapping the two classes' names changed which examples ActiveLab asked for.
    for seed in range(3):
        labels, probs, unlabeled = _campaign(seed)
        swapped = 1 - labels
        scores, scores_u = activelab(labels, probs, unlabeled)
        again, again_u = activelab(swapped, probs[:, ::-1], unlabeled[:, ::-1])
        np.testing.assert_allclose(again, scores, rtol=1e-9)
        np.testing.assert_allclose(again_u, scores_u, rtol=1e-9)


def test_an_underconfident_model_looks_as_sure_on_the_pool_as_the_votes_say():
    # The generated model is underconfident (its logits shrunk); fitted to the votes given, the
    # temperature sharpens it, so a pool example it leans on scores above its raw top probability.
    labels, probs, unlabeled = _campaign(0)
    _, scores_u = activelab(labels, probs, unlabeled)
    _, flat = activelab(labels.iloc[:0], probs[:0], unlabeled)  # no labels: unscaled, unit weights
    assert np.mean(scores_u > flat) > 0.9
