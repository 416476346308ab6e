"""The crowdsourcing field's aggregators, through Toloka's ``crowd-kit`` (never re-written here).

Each method fits on the annotators' labels alone (no model), so it runs from round 0 on.
crowd-kit receives the labels as class *names* and returns frames keyed by them; this
module joins them back to ``classes`` by name (a class nobody chose gets probability 0)
and turns each method's own worker parameters into one scale:

``annotator_quality`` = the estimated probability that the annotator's label is the true
class (1/K: no better than chance; 1: always right).

* ``dawid_skene``: the annotator's confusion matrix, sum over classes c of prior(c) x P(says c | c).
* ``one_coin_dawid_skene``: crowd-kit's ``skills_``, the one accuracy of the one-coin model.
* ``glad``: sigmoid(ability x inverse difficulty) averaged over every example: the accuracy
  on a typical example.
* ``mace``: competence theta (the chance of not spamming) plus, when spamming, the chance that
  the spam label is right: theta + (1 - theta) x sum over c of spam(c) x prior(c).
* ``wawa``, ``zero_based_skill``: crowd-kit's ``skills_``, the annotator's agreement with the
  weighted majority.

``consensus_quality`` is the method's posterior probability of the consensus label
(for ``wawa`` and ``zero_based_skill`` the skill-weighted vote share).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks.consensus.base import Consensus, check_label_matrix, from_posterior, vote_counts


def crowdkit_consensus(labels_multiannotator: pd.DataFrame, *, method: str, classes: Sequence[str],
                       seed: int) -> Consensus:
    """Consensus of ``method`` (one of :data:`METHODS`) through crowd-kit.

    Parameters
    ----------
    labels_multiannotator : DataFrame of shape (N, M), class indices (see ``to_wide``)
        Every row needs a label; annotators without labels are dropped.
    method : a key of :data:`METHODS`.
    classes : the K class names, in index order; crowd-kit sees the names, so ties inside it
        and the order of its columns follow the names, not their order in params.yaml.
    seed : MACE's initialisation; the exact-tie break of the consensus label.
    """
    if method not in METHODS:
        raise ValueError(f"unknown crowd-kit method {method!r}; choose one of {', '.join(METHODS)}.")
    labels = check_label_matrix(labels_multiannotator, n_classes=len(classes))
    long, columns = _long(labels, classes)
    posterior, skill = METHODS[method](long, list(classes), seed)
    posterior = posterior.reindex(index=range(len(labels)), columns=list(classes)).fillna(0.0).to_numpy()
    posterior = _vote_share_where_empty(posterior, labels.to_numpy(), len(classes))
    quality = skill.set_axis(columns[skill.index.to_numpy(dtype=int)]).reindex(range(labels.shape[1]))
    quality = quality.to_numpy(dtype=float)
    return from_posterior(labels, posterior, np.clip(quality, 0.0, 1.0), classes=classes, seed=seed, method=method)


def _long(labels: pd.DataFrame, classes: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """crowd-kit's input: ``task`` (row number), ``worker`` (a code), ``label`` (class name); and
    the column of ``labels`` each worker code stands for.

    Rows are sorted by label name, then column, then task, and workers are numbered in the order
    they first appear, so that each label's and worker's first appearance is also their sorted
    order: crowd-kit 1.4.2's MACE indexes its arrays by first appearance but fills them in sorted
    order, and its result would otherwise depend on the order of the rows.
    """
    values = labels.to_numpy()
    task, column = np.nonzero(~np.isnan(values))
    names = np.asarray(classes, dtype=object)[values[task, column].astype(int)]
    long = pd.DataFrame({"task": task, "worker": column, "label": names})
    long = long.sort_values(["label", "worker", "task"], kind="stable").reset_index(drop=True)
    codes, columns = pd.factorize(long["worker"])
    return long.assign(worker=codes), np.asarray(columns)


def _vote_share_where_empty(posterior: np.ndarray, values: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows crowd-kit left empty or NaN (every label weighted 0) take the plain vote share."""
    bad = ~np.isfinite(posterior).all(axis=1) | (posterior.sum(axis=1) <= 0)
    if bad.any():
        counts = vote_counts(values[bad], n_classes)
        posterior = posterior.copy()
        posterior[bad] = counts / counts.sum(axis=1, keepdims=True)
    return posterior / posterior.sum(axis=1, keepdims=True)


def _priors(posterior: pd.DataFrame, classes: list[str]) -> pd.Series:
    return posterior.reindex(columns=classes).fillna(0.0).mean()


def _dawid_skene(long: pd.DataFrame, classes: list[str], seed: int):
    from crowdkit.aggregation import DawidSkene

    model = DawidSkene(n_iter=100).fit(long)
    prior = model.priors_.reindex(classes).fillna(0.0)
    errors = model.errors_.reindex(columns=classes).fillna(0.0)  # (worker, said) x true
    said = errors.index.get_level_values("label")
    right = errors.to_numpy()[np.arange(len(errors)), [classes.index(c) for c in said]] * prior[said].to_numpy()
    skill = pd.Series(right, index=errors.index.get_level_values("worker")).groupby(level=0).sum()
    return model.probas_, skill


def _one_coin(long: pd.DataFrame, classes: list[str], seed: int):
    from crowdkit.aggregation import OneCoinDawidSkene

    model = OneCoinDawidSkene(n_iter=100).fit(long)
    return model.probas_, model.skills_


def _glad(long: pd.DataFrame, classes: list[str], seed: int):
    from crowdkit.aggregation import GLAD

    # Priors over every class, so a class nobody chose is still a candidate (and K >= 2).
    model = GLAD(n_iter=100, labels_priors=pd.Series(1.0 / len(classes), index=classes)).fit(long)
    ability = model.alphas_.to_numpy()[:, None] * model.betas_.to_numpy()[None, :]
    skill = pd.Series((1.0 / (1.0 + np.exp(-ability))).mean(axis=1), index=model.alphas_.index)
    return model.probas_, skill


def _mace(long: pd.DataFrame, classes: list[str], seed: int):
    from crowdkit.aggregation import MACE

    # crowd-kit 1.4.2 starts every restart from the same random_state, so restarts repeat one
    # another: one restart gives the same result in a tenth of the time.
    model = MACE(n_restarts=1, n_iter=50, random_state=seed).fit(long)
    workers, said = pd.unique(long["worker"]), list(pd.unique(long["label"]))
    competence = model.spamming_[:, 1] / model.spamming_.sum(axis=1)
    spam = model.thetas_ / model.thetas_.sum(axis=1, keepdims=True)  # (workers, said labels)
    lucky = spam @ _priors(model.probas_, classes)[said].to_numpy()
    return model.probas_, pd.Series(competence + (1 - competence) * lucky, index=workers)


def _weighted_vote(kind: str):
    def fit(long: pd.DataFrame, classes: list[str], seed: int):
        from crowdkit import aggregation

        # crowd-kit 1.4.2's Wawa/ZeroBasedSkill.predict_proba call scikit-learn's check_is_fitted, which
        # fails from scikit-learn 1.6 on (no __sklearn_tags__); their fit works, and applying the fitted
        # skills is crowd-kit's own MajorityVote, as their predict does.
        skills = getattr(aggregation, kind)().fit(long).skills_
        return aggregation.MajorityVote().fit_predict_proba(long, skills=skills), skills

    return fit


# method name -> fit(long, classes, seed) -> (posterior: DataFrame task x class name, skill: Series by worker)
METHODS: dict[str, Callable] = {
    "dawid_skene": _dawid_skene,
    "one_coin_dawid_skene": _one_coin,
    "glad": _glad,
    "mace": _mace,
    "wawa": _weighted_vote("Wawa"),
    "zero_based_skill": _weighted_vote("ZeroBasedSkill"),
}
