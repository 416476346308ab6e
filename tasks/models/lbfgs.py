"""scikit-learn's L2 logistic regression fit (``solver="lbfgs"``), the same numbers without its per-call cost.

A head fit of a politeness round is 14 L-BFGS steps on a few hundred rows; sklearn spent
more time around each step (array-API dispatch, input checks, a new transposed matrix
per gradient) than in it. :class:`Problem` checks and transposes a training set once
for every C of a search, and :func:`fit` runs scipy's L-BFGS-B on the objective that
``LogisticRegression.fit`` minimises, computed with the same operations in the same
order: the coefficients are sklearn's bit for bit (tests/unit/test_lbfgs.py holds
that for binary, multinomial, weighted, sparse and dense problems), and the result is
a fitted ``LogisticRegression``, saved and read back as one. The pointwise loss is sklearn's
own (``sklearn._loss``, private: the code its fit runs); a scikit-learn release that changes
any of this fails that test rather than shifting a fit unnoticed (1.8 differs in the last bits,
hence pyproject's scikit-learn>=1.9).
"""

from __future__ import annotations

import warnings

import numpy as np

# LogisticRegression's defaults that crowdloop uses (tol), and its own solver options.
MAX_ITER, TOL, MAXLS = 2000, 1e-4, 50


class Problem:
    """A training set X (N, D), class labels y (N,) and optional row weights (N,), checked once.

    What ``LogisticRegression.fit`` derives from them before its solver starts: X as CSR or
    C-ordered float, the sorted classes, the 0/1 (binary) or class-index (multinomial) target,
    float weights and their sum.
    """

    def __init__(self, X, y: np.ndarray, sample_weight: np.ndarray | None = None):
        from scipy import sparse
        from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
        from sklearn.utils.validation import check_array

        self.X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32], order="C")
        y = np.asarray(y)
        self.classes = np.unique(y)
        if len(self.classes) < 2:
            raise ValueError(f"a logistic regression needs two classes; y holds {len(self.classes)}.")
        self.sparse = sparse.issparse(self.X)
        self.XT = self.X.T  # sparse: the CSC view sklearn's gradient builds anew at every step
        self.n_samples, self.n_features = self.X.shape
        self.binary = len(self.classes) == 2
        if self.binary:
            self.target = (y == self.classes[1]).astype(self.X.dtype)
            self.loss = HalfBinomialLoss()
        else:
            self.target = np.searchsorted(self.classes, y).astype(self.X.dtype)
            self.loss = HalfMultinomialLoss(n_classes=len(self.classes))
        self.weights = None if sample_weight is None else np.array(sample_weight, dtype=self.X.dtype)
        self.weight_sum = self.n_samples if self.weights is None else np.sum(self.weights)

    def loss_gradient(self, coef: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """sklearn's ``LinearModelLoss.loss_gradient`` with an intercept, for this problem."""
        dtype = self.X.dtype
        if self.binary:
            weights, intercept = coef[:-1], coef[-1]
            raw = self.X @ np.asarray(weights, dtype=dtype) + np.asarray(intercept, dtype=dtype)
        else:
            matrix = coef.reshape((len(self.classes), -1), order="F")
            weights, intercept = matrix[:, :-1], matrix[:, -1]
            raw = self.X @ np.asarray(weights, dtype=dtype).T + np.asarray(intercept, dtype=dtype)
        loss, pointwise = self.loss.loss_gradient(y_true=self.target, raw_prediction=raw,
                                                  sample_weight=self.weights, n_threads=1)
        loss = float(np.sum(loss) / self.weight_sum)
        flat = weights if self.binary else np.ravel(weights, order="K")  # sklearn's squared_norm
        loss += float(0.5 * l2 * (flat @ flat if self.binary else np.dot(flat, flat)))
        pointwise /= self.weight_sum
        if self.binary:
            grad = np.empty_like(coef, dtype=weights.dtype)
            grad[:self.n_features] = self.XT @ pointwise + l2 * weights
            grad[-1] = np.sum(pointwise)
            return loss, grad
        grad = np.empty((len(self.classes), self.n_features + 1), dtype=weights.dtype, order="F")
        # pointwise.T @ X: for a sparse X, scipy computes (X.T @ pointwise).T
        product = (self.XT @ pointwise).T if self.sparse else pointwise.T @ self.X
        grad[:, :self.n_features] = product + l2 * weights
        grad[:, -1] = np.sum(pointwise, axis=0)
        return loss, grad.ravel(order="F")


def fit(problem: Problem, C: float):
    """``LogisticRegression(C=C, solver="lbfgs", max_iter=2000).fit(X, y, sample_weight)`` on ``problem``."""
    from scipy import optimize
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    k = 1 if problem.binary else len(problem.classes)
    start = np.zeros(k * (problem.n_features + 1), dtype=problem.X.dtype)  # scipy keeps a float32 start float32
    l2 = 1.0 / (C * float(problem.weight_sum))
    result = optimize.minimize(problem.loss_gradient, start, method="L-BFGS-B", jac=True, args=(l2,),
                               options={"maxiter": MAX_ITER, "maxls": MAXLS, "gtol": TOL,
                                        "ftol": 64 * np.finfo(float).eps})
    if result.status != 0:
        warnings.warn(f"lbfgs failed to converge after {min(result.nit, MAX_ITER)} iteration(s) "
                      f"(status={result.status}): {result.message}", ConvergenceWarning, stacklevel=2)
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=MAX_ITER)
    model.classes_, model.n_features_in_ = problem.classes, problem.n_features
    model.n_iter_ = np.asarray([min(result.nit, MAX_ITER)], dtype=np.int32)
    # Laid out in memory as sklearn lays them out (its copy(order="K"), then np.stack): X @ coef_.T
    # then takes the same path through numpy and BLAS, and predictions agree to the last bit.
    weights = result.x if problem.binary else np.reshape(result.x, (k, -1), order="F")
    coef = np.stack([np.asarray(weights.copy(order="K"), dtype=problem.X.dtype)])[0]
    if problem.binary:
        model.intercept_, model.coef_ = coef[-1:], coef[:-1][None, :]
    else:
        model.intercept_, model.coef_ = coef[:, -1], coef[:, :-1]
    return model


def predict_proba(model, X) -> np.ndarray:
    """``model.predict_proba(X)`` for a fitted binary or multinomial ``LogisticRegression`` and an X
    of its columns (CSR or float array), without sklearn's input checks: the same numbers."""
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    scores = X @ model.coef_.T + model.intercept_
    if len(model.classes_) > 2:
        return softmax(scores, copy=False)
    scores = np.reshape(scores, (-1,))
    expit(scores, out=scores)
    return np.stack([1 - scores, scores], axis=1)
