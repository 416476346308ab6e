"""The lean L-BFGS fit gives scikit-learn's LogisticRegression numbers, bit for bit."""

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from crowdloop.tasks.models import lbfgs


def _problem(seed: int, *, classes: int, layout: str, weighted: bool):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(30, 200)), int(rng.integers(5, 40))
    X = rng.normal(size=(n, d)) + (np.arange(n) % classes)[:, None] * 0.3
    if layout == "float32":
        X = X.astype(np.float32)
    elif layout == "sparse":
        X[rng.random(X.shape) < 0.7] = 0.0
        X = sparse.csr_matrix(X)
    y = np.arange(n) % classes
    weights = rng.uniform(0.1, 3.0, n) if weighted else None
    return X, y, weights


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("layout", ["float64", "float32", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("C", [0.1, 100.0])
def test_fit_and_predict_equal_sklearns_bit_for_bit(classes, layout, weighted, C):
    X, y, weights = _problem(classes * 7 + len(layout) + weighted, classes=classes, layout=layout, weighted=weighted)
    expected = LogisticRegression(C=C, solver="lbfgs", max_iter=2000).fit(X, y, sample_weight=weights)
    fitted = lbfgs.fit(lbfgs.Problem(X, y, weights), C)
    assert fitted.coef_.dtype == expected.coef_.dtype
    np.testing.assert_array_equal(fitted.coef_, expected.coef_)
    np.testing.assert_array_equal(fitted.intercept_, expected.intercept_)
    np.testing.assert_array_equal(fitted.n_iter_, expected.n_iter_)
    np.testing.assert_array_equal(fitted.classes_, expected.classes_)
    # the fitted model is a LogisticRegression: sklearn's predictions and ours agree exactly
    np.testing.assert_array_equal(fitted.predict_proba(X), expected.predict_proba(X))
    np.testing.assert_array_equal(lbfgs.predict_proba(fitted, X), expected.predict_proba(X))


def test_one_problem_serves_every_C_of_a_search():
    X, y, weights = _problem(1, classes=3, layout="sparse", weighted=True)
    problem = lbfgs.Problem(X, y, weights)
    for C in (0.1, 1.0, 10.0):
        expected = LogisticRegression(C=C, solver="lbfgs", max_iter=2000).fit(X, y, sample_weight=weights)
        np.testing.assert_array_equal(lbfgs.fit(problem, C).coef_, expected.coef_)


def test_class_labels_need_not_be_0_to_k():
    X, y, _ = _problem(2, classes=3, layout="float64", weighted=False)
    labels = np.array([4, 7, 9])[y]
    fitted = lbfgs.fit(lbfgs.Problem(X, labels), 1.0)
    expected = LogisticRegression(C=1.0, solver="lbfgs", max_iter=2000).fit(X, labels)
    np.testing.assert_array_equal(fitted.classes_, [4, 7, 9])
    np.testing.assert_array_equal(fitted.coef_, expected.coef_)


def test_a_single_class_is_refused():
    with pytest.raises(ValueError, match="two classes"):
        lbfgs.Problem(np.ones((4, 2)), np.zeros(4, dtype=int))


def test_a_fit_that_stops_early_warns_as_sklearn_does(monkeypatch):
    X, y, _ = _problem(3, classes=2, layout="float64", weighted=False)
    monkeypatch.setattr(lbfgs, "MAX_ITER", 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = lbfgs.fit(lbfgs.Problem(X, y), 100.0)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert fitted.n_iter_.tolist() == [1]
