"""k-fold out-of-sample prediction, with a fake backend that remembers what it saw."""

import numpy as np
import pytest

from crowdloop.tasks.predict import fold_assignment, out_of_sample


class NearestCentroid:
    """Fits per-class means of 1-d features; records the rows of every fit.

    Its last probability column is not a class: it says whether the predicted row
    was in the model's training set (so tests can check out-of-sample-ness).
    """

    name = "fake"

    def __init__(self):
        self.fits = []

    def fit(self, X, y, *, n_classes, seed, sample_weight=None):
        self.fits.append(set(X[:, 1].astype(int)))  # column 1 holds the example's row id
        centroids = np.array([X[y == k, 0].mean() if (y == k).any() else np.inf
                              for k in range(n_classes - 1)])
        return {"centroids": centroids, "seen": self.fits[-1]}

    def predict_proba(self, fitted, X):
        distance = np.abs(X[:, [0]] - fitted["centroids"][None, :])
        logits = -np.nan_to_num(distance, posinf=1e6)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = probs / probs.sum(axis=1, keepdims=True)
        return np.column_stack([probs, np.array([int(i in fitted["seen"]) for i in X[:, 1].astype(int)])])


def _data(n=30, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = np.column_stack([y + rng.normal(0, 0.2, n), np.arange(n)])
    return X, y


def test_every_labeled_example_is_predicted_by_a_model_that_never_saw_it():
    X, y = _data()
    backend = NearestCentroid()
    oos = out_of_sample(backend, X, y, n_classes=4, folds=3, seed=0)
    # the fake backend writes "was this row in my training set" into an extra last column
    assert oos.pred_probs.shape == (30, 4)
    assert (oos.pred_probs[:, -1] == 0).all()
    assert len(backend.fits) == 3
    for fold in range(3):
        held = set(np.flatnonzero(oos.folds == fold))
        assert held.isdisjoint(backend.fits[fold])
        assert held | backend.fits[fold] == set(range(30))


def test_a_class_with_fewer_members_than_folds_does_not_crash():
    y = np.array([0] * 10 + [1] * 10 + [2])
    assignment = fold_assignment(y, folds=3, seed=0)
    assert sorted(np.unique(assignment)) == [0, 1, 2]
    X = np.column_stack([y.astype(float), np.arange(len(y))])
    oos = out_of_sample(NearestCentroid(), X, y, n_classes=4, folds=3, seed=0)
    assert oos.pred_probs.shape == (21, 4)


def test_more_folds_than_examples_falls_back_to_leave_one_out():
    y = np.array([0, 1])
    assert sorted(fold_assignment(y, folds=3, seed=0)) == [0, 1]
    X = np.column_stack([y.astype(float), np.arange(2)])
    backend = NearestCentroid()
    oos = out_of_sample(backend, X, y, n_classes=3, folds=3, seed=0)
    assert len(backend.fits) == 2 and (oos.pred_probs[:, -1] == 0).all()


def test_every_class_smaller_than_folds_uses_unstratified_folds():
    y = np.array([0, 0, 1, 1, 2])
    assignment = fold_assignment(y, folds=3, seed=0)
    assert sorted(np.bincount(assignment)) == [1, 2, 2]


def test_the_fold_models_are_returned_and_each_one_skipped_its_fold():
    X, y = _data(n=12)
    oos = out_of_sample(NearestCentroid(), X, y, n_classes=4, folds=3, seed=0)
    assert len(oos.models) == 3 and oos.full_model is None
    for fold, model in enumerate(oos.models):
        assert model["seen"].isdisjoint(set(np.flatnonzero(oos.folds == fold)))


def test_out_of_sample_is_deterministic_and_fold_seeds_differ():
    X, y = _data()
    seeds = []

    class Recording(NearestCentroid):
        def fit(self, X, y, *, n_classes, seed, sample_weight=None):
            seeds.append(seed)
            return super().fit(X, y, n_classes=n_classes, seed=seed)

    first = out_of_sample(Recording(), X, y, n_classes=4, folds=3, seed=5)
    second = out_of_sample(Recording(), X, y, n_classes=4, folds=3, seed=5)
    assert np.array_equal(first.pred_probs, second.pred_probs) and np.array_equal(first.folds, second.folds)
    assert np.array_equal(first.fold_pred_probs, second.fold_pred_probs)
    assert len(set(seeds[:3])) == 3 and 5 not in seeds  # distinct, and not the full model's seed


def test_labels_outside_the_classes_or_mismatched_rows_are_clear_errors():
    X, y = _data(n=9)
    with pytest.raises(ValueError, match="class indices in 0..1"):
        out_of_sample(NearestCentroid(), X, y, n_classes=2, folds=3, seed=0)
    with pytest.raises(ValueError, match="one label per row"):
        out_of_sample(NearestCentroid(), X[:5], y, n_classes=4, folds=3, seed=0)


def test_folds_are_deterministic_per_seed():
    y = np.arange(40) % 2
    assert (fold_assignment(y, folds=3, seed=1) == fold_assignment(y, folds=3, seed=1)).all()
    assert (fold_assignment(y, folds=3, seed=1) != fold_assignment(y, folds=3, seed=2)).any()


@pytest.mark.parametrize("y", [np.array([0]), np.array([1, 1, 1])])
def test_too_few_labels_is_a_clear_error(y):
    with pytest.raises(ValueError, match="at least 2 labeled examples of 2 classes"):
        fold_assignment(y, folds=3, seed=0)


def test_labels_of_one_class_are_a_user_error_the_command_prints_in_one_line():
    """A cold-start batch answered with one class only: the next round failed with a ValueError
    traceback out of the flow; a CrowdloopError is the command's one line, with what to do."""
    from crowdloop.tasks.errors import CrowdloopError

    with pytest.raises(CrowdloopError, match=r"the consensus labels so far are 25 example\(s\) of 1 class\(es\). "
                                             r"Ingest answers that give another class"):
        fold_assignment(np.zeros(25, dtype=int), folds=3, seed=0)


def test_fold_pred_probs_hold_every_fold_model_on_every_labeled_example():
    X, y = _data()
    oos = out_of_sample(NearestCentroid(), X, y, n_classes=4, folds=3, seed=0)
    assert oos.fold_pred_probs.shape == (3, 30, 4)
    rows = np.arange(30)
    np.testing.assert_array_equal(oos.fold_pred_probs[oos.folds, rows], oos.pred_probs)
    # the other k-1 models trained on the example (the fake marks that in its last column)
    seen = oos.fold_pred_probs[:, :, -1].sum(axis=0)
    assert (seen == 2).all()


class Settled(NearestCentroid):
    """A backend whose fits take a setting, ``level``; the fold models take the full model's."""

    def __init__(self):
        super().__init__()
        self.levels = []

    def fit(self, X, y, *, n_classes, seed, sample_weight=None, level=None):
        self.levels.append(level)
        fitted = super().fit(X, y, n_classes=n_classes, seed=seed)
        return {**fitted, "level": len(X) if level is None else level}  # its own: how many rows it saw

    def fold_settings(self, full):
        return {"level": full["level"]}


def test_the_fold_models_take_the_full_models_settings():
    X, y = _data()
    backend = Settled()
    oos = out_of_sample(backend, X, y, n_classes=4, folds=3, seed=0, fit_full=True)
    assert backend.levels == [None, 30, 30, 30]  # the full model first, then the folds with its setting
    assert oos.full_model["level"] == 30 and [m["level"] for m in oos.models] == [30, 30, 30]
    assert oos.full_model["seen"] == set(range(30))
    without_full = out_of_sample(Settled(), X, y, n_classes=4, folds=3, seed=0)
    assert [m["level"] for m in without_full.models] == [20, 20, 20]  # each its own


def test_the_head_searches_C_once_a_round_and_its_fold_models_take_that_C(monkeypatch):
    """The C that inner cross-validation chose over every labeled example, for the fold models too
    (each searched its own before: 4 searches of 12 fits a round, now 1)."""
    from crowdloop.tasks.config import load
    from crowdloop.tasks.models import logistic
    from crowdloop.tasks.models.head import HeadBackend

    searches, real = [], logistic.choose_C
    monkeypatch.setattr(logistic, "choose_C", lambda *a, **k: searches.append(1) or real(*a, **k))
    head = HeadBackend(load().model, embedding_cache=None, progress=lambda _: None)
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 2
    features = rng.normal(size=(60, 5)) + labels[:, None]
    oos = out_of_sample(head, features, labels, n_classes=2, folds=3, seed=0, fit_full=True)
    assert len(searches) == 1
    assert {m.C for m in oos.models} == {oos.full_model.C}
