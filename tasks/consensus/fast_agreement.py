"""cleanlab 2.9.0's agreement of each annotator with the others, without its loop over annotator pairs.

``get_label_quality_multiannotator`` (CROWDLAB's consensus, ActiveLab's labeled half) weighs
each annotator by how often they agree with the others who labeled the same examples.
cleanlab computes that with a Python loop over every pair of annotators: M² numpy operations
for M annotators (0.26 s a call for 219 annotators on 550 examples; for thousands of
annotators, minutes a round). :func:`annotator_agreement` counts each example's votes per
class once and reads every annotator's figure from the counts, ending with cleanlab's own
operations (the same numbers, bit for bit: tests/unit/test_consensus.py). :func:`swapped_in`
puts it in place of cleanlab's private function while crowdloop calls cleanlab (cleanlab is
pinned); outside those calls, cleanlab is left as it is.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import numpy as np

_lock = threading.Lock()
_held = {"depth": 0, "original": None}


def annotator_agreement(labels_multiannotator: np.ndarray, num_annotations: np.ndarray,
                        verbose: bool = True) -> np.ndarray:
    """cleanlab's ``_get_annotator_agreement_with_annotators``: for each annotator (M,), the
    mean over the examples they labeled, weighted by the other labels there, of the share of
    those other labels that equal theirs. Annotators who share no example with anyone get the
    mean of the others (cleanlab prints a note when ``verbose``)."""
    labels = np.asarray(labels_multiannotator, dtype=float)
    num_annotations = np.asarray(num_annotations)
    given = ~np.isnan(labels)
    classes = np.unique(labels[given])
    votes = np.stack([(labels == c).sum(axis=1) for c in classes], axis=1) if len(classes) else None
    adjusted = num_annotations - 1
    agreement = np.zeros(labels.shape[1])
    for annotator in range(labels.shape[1]):
        rows = np.flatnonzero(given[:, annotator])
        if np.sum(adjusted[rows]) == 0:
            agreement[annotator] = np.nan
            continue
        same = votes[rows, np.searchsorted(classes, labels[rows, annotator])].astype(float)
        per_example = np.zeros(len(rows))
        multi = num_annotations[rows] > 1
        per_example[multi] = (same[multi] - 1) / adjusted[rows][multi]
        agreement[annotator] = np.average(per_example, weights=num_annotations[rows] - 1)
    alone = np.isnan(agreement)
    if np.sum(alone) > 0:
        if verbose:
            print(f"Annotator(s) {list(np.where(alone)[0])} did not annotate any examples that overlap "
                  "with other annotators, using the average annotator agreement among other annotators "
                  "as this annotator's agreement.")
        agreement[alone] = np.mean(agreement[~alone])
    return agreement


@contextmanager
def swapped_in() -> Iterator[None]:
    """cleanlab's ``multiannotator._get_annotator_agreement_with_annotators`` is
    :func:`annotator_agreement` inside the block (nested and concurrent blocks share one swap)."""
    from cleanlab import multiannotator

    with _lock:
        if _held["depth"] == 0:
            _held["original"] = multiannotator._get_annotator_agreement_with_annotators
            multiannotator._get_annotator_agreement_with_annotators = annotator_agreement
        _held["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _held["depth"] -= 1
            if _held["depth"] == 0:
                multiannotator._get_annotator_agreement_with_annotators = _held["original"]
