"""Inter-annotator agreement of a round: Krippendorff's alpha and the share of unanimous examples.

Both are read from the label matrix alone (no consensus method, no model), overall and per
class, so they mean the same whatever ``consensus.method`` says:

* ``krippendorff_alpha``: Krippendorff's alpha for nominal data (the ``krippendorff``
  package), over every example with at least two labels. 1 = perfect agreement, 0 = what
  chance alone gives, below 0 = systematic disagreement. Per class, ``alpha`` of the
  one-vs-rest labels (chose this class or another one).
* ``unanimous_share``: among examples with at least two labels, the share whose labels are
  all the same. Per class: among those examples whose consensus label is that class.

A value that is not defined (no example with two labels; one class only) is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from crowdloop.tasks.consensus.base import vote_counts

_REFUSED = re.compile(r"[^0-9A-Za-z_.\- /]")  # what MLflow does not accept in a metric name


def krippendorff_alpha(values: np.ndarray, n_classes: int) -> float:
    """Nominal Krippendorff's alpha of the labels ``values`` (N, M) (class indices, NaN = none);
    NaN when it is not defined (fewer than two labels on every example, or a single class used)."""
    import krippendorff

    counts = vote_counts(np.asarray(values, dtype=float), n_classes)
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(pairable) == 0 or (pairable.sum(axis=0) > 0).sum() < 2:
        return float("nan")
    return float(krippendorff.alpha(value_counts=pairable, value_domain=list(range(n_classes)),
                                    level_of_measurement="nominal"))


def agreement_metrics(values: np.ndarray, consensus_label: np.ndarray, *, classes: Sequence[str]) -> dict:
    """The round's agreement metrics.

    Parameters
    ----------
    values : ndarray of shape (N, M), class indices, NaN = no label
    consensus_label : ndarray of shape (N,), the round's consensus class index per example
    classes : the K class names (per-class keys are ``<metric>.<class name>``, see :func:`metric_name`)

    Returns
    -------
    dict: ``krippendorff_alpha``, ``unanimous_share``, ``multiply_labeled`` (examples with two
    labels or more) and the per-class values; undefined values are left out.
    """
    values = np.asarray(values, dtype=float)
    n_classes = len(classes)
    counts = vote_counts(values, n_classes)
    multiple = counts.sum(axis=1) >= 2
    unanimous = counts.max(axis=1) == counts.sum(axis=1)
    out = {"multiply_labeled": int(multiple.sum()),
           "krippendorff_alpha": krippendorff_alpha(values, n_classes)}
    if multiple.any():
        out["unanimous_share"] = float(unanimous[multiple].mean())
    for k, name in enumerate(classes):
        mine = multiple & (np.asarray(consensus_label) == k)
        if mine.any():
            out[metric_name("unanimous_share", name)] = float(unanimous[mine].mean())
        one_vs_rest = np.where(np.isnan(values), np.nan, (values == k).astype(float))
        out[metric_name("krippendorff_alpha", name)] = krippendorff_alpha(one_vs_rest, 2)
    return {key: value for key, value in out.items() if value == value}  # NaN: not defined, left out


def metric_name(metric: str, class_name: str) -> str:
    """``metric.class`` with every character MLflow refuses in a metric name replaced by ``_``."""
    return f"{metric}.{_REFUSED.sub('_', class_name)}"
