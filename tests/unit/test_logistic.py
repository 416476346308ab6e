"""The head's classifier (tasks/models/logistic.py): C by inner cross-validation, and fits that
choose exactly what one fit per fold and C chose before the fold's columns were cut once."""

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from crowdloop.tasks.config import load
from crowdloop.tasks.models import lbfgs, logistic
from crowdloop.tasks.models.base import floor_probs


def _reference_C(X, y, w, *, grid, folds, seed):
    """crowdloop's C search before issue 16: every (fold, C) fit cuts its own columns."""
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    losses = np.zeros(len(grid))
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        for i, C in enumerate(sorted(grid)):
            columns = np.flatnonzero(X[train].getnnz(axis=0))
            model = LogisticRegression(C=C, solver="lbfgs", max_iter=2000).fit(X[train][:, columns], y[train],
                                                                             sample_weight=w[train])
            probs = model.predict_proba(X[held][:, columns])
            losses[i] += log_loss(y[held], probs, labels=np.unique(y), sample_weight=w[held]) * w[held].sum()
    return float(sorted(grid)[int(np.argmin(losses))])


def _features(rng, n, classes):
    """Like the head's: a dense unit-norm block beside sparse word counts, signal in both."""
    y = np.arange(n) % classes
    signal = rng.uniform(0.0, 1.5)  # from none (strong regularisation wins) to plenty (weak wins)
    dense = rng.normal(size=(n, 8)) + np.eye(classes, 8)[y] * signal
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    words = sparse.random(n, 400, density=0.02, random_state=rng, format="lil")
    for row in np.flatnonzero(rng.random(n) < signal / 2):
        words[row, y[row] * 7] = 1.0  # a word that goes with the class
    return sparse.hstack([sparse.csr_matrix(dense), words.tocsr()], format="csr"), y


@pytest.mark.parametrize("classes", [2, 3])
def test_fit_head_chooses_the_C_and_predicts_exactly_as_one_fit_per_fold_and_C(classes):
    head = load().model.head
    rng = np.random.default_rng(classes)
    chosen = []
    for seed in range(6):
        X, y = _features(rng, 45 + 15 * seed, classes)
        weights = rng.uniform(0.2, 1.0, len(y))
        fitted = logistic.fit_head(X, y, head=head, n_classes=classes, seed=seed, sample_weight=weights)
        expected_C = _reference_C(X, y, weights, grid=head.C_grid, folds=head.inner_folds, seed=seed)
        assert fitted.C == expected_C
        columns = np.flatnonzero(X.getnnz(axis=0))
        reference = LogisticRegression(C=expected_C, solver="lbfgs", max_iter=2000).fit(
            X[:, columns], y, sample_weight=weights)
        assert np.array_equal(logistic.predict_head(fitted, X), floor_probs(reference.predict_proba(X[:, columns])))
        chosen.append(fitted.C)
    assert len(set(chosen)) >= 2, chosen  # the data lets the search choose different Cs


@pytest.mark.parametrize("classes", [2, 4])
def test_the_log_loss_is_sklearns_bit_for_bit(classes):
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(classes)
    y = rng.integers(0, classes, 50)
    probs = rng.dirichlet(np.ones(classes) * 0.3, 50)  # some probabilities near 0, to be clipped
    probs[0, y[0]] = 0.0  # a true class at probability 0: clipped
    probs[0] /= probs[0].sum()  # rows still sum to one, as sklearn expects
    weights = rng.uniform(0, 2, 50)
    labels = np.arange(classes)
    assert logistic.log_loss(y, probs, classes=labels, weights=weights) == log_loss(y, probs, labels=labels,
                                                                                     sample_weight=weights)


def test_the_fitter_is_fit_head_with_the_backends_settings_and_pickles_small():
    import functools
    import pickle

    head = load().model.head
    fitter = functools.partial(logistic.fit_head, head=head)
    assert len(pickle.dumps(fitter)) < 1000  # a name and the settings: no encoder, no cache


def test_choose_C_prefers_strong_regularisation_on_noise_and_weak_on_separable_data():
    rng = np.random.default_rng(0)
    y = np.arange(60) % 2
    separable = np.column_stack([y * 4.0 - 2 + rng.normal(0, 0.1, 60), rng.normal(size=(60, 4))])
    noise = rng.normal(size=(60, 5))
    grid = (0.001, 0.1, 10.0, 1000.0)
    assert logistic.choose_C(separable, y, grid=grid, folds=3, seed=0) >= 10.0
    assert logistic.choose_C(noise, y, grid=grid, folds=3, seed=0) <= 0.1


def test_choose_C_copes_with_rare_classes():
    rng = np.random.default_rng(0)
    grid = (0.001, 0.1, 10.0, 1000.0)
    # a singleton class sits out the search; the others (2 members each at least) still choose
    y = np.array([0] * 10 + [1] * 10 + [2])
    X = np.column_stack([y * 4.0 + rng.normal(0, 0.1, 21), rng.normal(size=(21, 3))])
    assert logistic.choose_C(X, y, grid=grid, folds=3, seed=0) >= 10.0
    # no two classes with 2 members: no search possible, the median C
    assert logistic.choose_C(X[[0, 10, 20]], np.array([0, 1, 2]), grid=grid, folds=3, seed=0) == 0.1


def test_head_fits_run_on_one_blas_thread_and_give_the_threads_back(monkeypatch):
    """Fits hold BLAS and OpenMP to one thread (parallel arms and folds are other processes and
    threads), with the thread pools found once per process; outside a fit the limits are as before."""
    from threadpoolctl import threadpool_info

    def most_threads() -> int:
        return max((pool["num_threads"] for pool in threadpool_info()), default=1)

    seen, real = [], lbfgs.fit
    monkeypatch.setattr(lbfgs, "fit", lambda *a, **k: seen.append(most_threads()) or real(*a, **k))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 5)), np.arange(60) % 2
    before = most_threads()
    head = load().model.head
    for seed in range(2):
        logistic.fit_head(X, y, head=head, n_classes=2, seed=seed)
    assert seen and set(seen) == {1}
    assert most_threads() == before
