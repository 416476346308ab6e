"""Annotators who go bad: each round, each annotator's quality, its change, and who is no longer asked.

A consensus method's ``annotator_quality`` is fitted on all of an annotator's labels, so an
annotator who turns careless halfway through a campaign drags it down only slowly. What this
module adds, per annotator and round (the extra columns of ``annotators.csv``):

* ``quality_change``: ``annotator_quality`` minus last round's (NaN for a new annotator, and for
  everyone when last round's consensus came from another method, ``consensus_method``: CROWDLAB's
  first round is the majority vote, and two methods' qualities are not on one scale);
* ``recent_quality``: the mean label quality of the annotator's last ``routing.quality_window``
  labels, where a label's quality is the consensus method's probability that it is the true
  class (``Consensus.label_quality``: the vote share for majority, CROWDLAB's label quality,
  crowd-kit's posterior), and ``recent_labels``, how many labels that mean is over. Only labels
  that something besides the annotator's own record judges count: a label on an example someone
  else labeled too, and, with CROWDLAB, every label (its model judges a lone label). A lone label
  under a label-only method is the annotator's word against nothing, so it would hide a turn for
  the worse; it counts once a second label arrives;
* ``flagged`` and ``flag_reason``: with ``routing.min_quality`` set, an annotator whose
  ``recent_quality`` over at least ``routing.min_labels`` labels is below it is flagged, and
  routing asks them nothing more (in simulation too). The flag is worked out again every
  round from the labels, so it lifts once the consensus judges those labels better.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WATCH_COLUMNS = ("quality_change", "recent_quality", "recent_labels", "flagged", "flag_reason", "consensus_method")


def watch(annotators: pd.DataFrame, label_quality: pd.DataFrame | None, annotations: pd.DataFrame,
          previous: pd.DataFrame | None, *, min_quality: float | None, window: int, min_labels: int,
          lone_labels: bool = False, method: str | None = None) -> pd.DataFrame:
    """``annotators`` with :data:`WATCH_COLUMNS` added.

    Parameters
    ----------
    annotators : DataFrame, one row per annotator (consensus.base.ANNOTATOR_STATS)
    label_quality : DataFrame of shape (N, M), index example_id, columns annotator_id, or None
        (no label qualities: ``recent_quality`` is NaN and nobody is flagged).
    annotations : DataFrame with columns example_id, annotator_id, oldest first: the labels
        behind the consensus; an annotator's last ``window`` rows are their recent labels.
    previous : last round's annotators (annotator_id, annotator_quality, and consensus_method when
        known), or None.
    min_quality : ``routing.min_quality``; None: nobody is flagged.
    window, min_labels : ``routing.quality_window`` and ``routing.min_labels``.
    lone_labels : whether a label nobody else gave on its example counts (the method judges it
        by more than the annotator's record: CROWDLAB's model).
    method : the consensus method behind ``annotators`` (``Consensus.method``); no quality change is
        reported against a ``previous`` made by another one.
    """
    out = annotators.copy()
    ids = out["annotator_id"]
    before = _by_annotator(previous if _same_method(previous, method) else None, "annotator_quality")
    out["quality_change"] = out["annotator_quality"].to_numpy() - ids.map(before).to_numpy(dtype=float)
    recent = recent_quality(label_quality, annotations, window=window, lone_labels=lone_labels)
    out["recent_quality"] = ids.map(recent["quality"]).to_numpy(dtype=float)
    out["recent_labels"] = ids.map(recent["labels"]).fillna(0).astype(int).to_numpy()
    flagged = np.zeros(len(out), dtype=bool) if min_quality is None else (
        (out["recent_labels"] >= min_labels) & (out["recent_quality"] < min_quality)).to_numpy()
    out["flagged"] = flagged
    out["flag_reason"] = [
        f"recent label quality {_below(q, min_quality)} over their last {n} labels is below routing.min_quality "
        f"{min_quality:g}" if f else "" for f, q, n in zip(flagged, out["recent_quality"], out["recent_labels"])]
    out["consensus_method"] = method
    return out


def _below(quality: float, limit: float) -> str:
    """``quality`` to 2 decimals, or as many more as it takes to read as below ``limit`` (0.449 under
    0.45 is "0.449", not "0.45 is below 0.45")."""
    for digits in range(2, 7):
        text = f"{quality:.{digits}f}"
        if float(text) < limit:
            return text
    return repr(float(quality))


def _same_method(previous: pd.DataFrame | None, method: str | None) -> bool:
    """Whether ``previous`` was made by ``method`` (unknown on either side, as in an annotators.csv
    written before the column existed: assumed so)."""
    if previous is None or method is None or "consensus_method" not in previous:
        return True
    made_by = set(previous["consensus_method"].dropna().astype(str))
    return not made_by or made_by == {method}


def recent_quality(label_quality: pd.DataFrame | None, annotations: pd.DataFrame, *, window: int,
                   lone_labels: bool = False) -> pd.DataFrame:
    """Per annotator (index annotator_id): ``quality``, the mean label quality of their last ``window``
    labels (in ``annotations`` order) on examples with two labels or more (any, with ``lone_labels``),
    and ``labels``, how many."""
    if label_quality is None or label_quality.empty or annotations.empty:
        return pd.DataFrame({"quality": pd.Series(dtype=float), "labels": pd.Series(dtype=int)})
    shared = label_quality if lone_labels else label_quality[label_quality.notna().sum(axis=1) >= 2]
    per_label = shared.stack().rename("quality")  # (example_id, annotator_id) -> quality, NaN dropped
    mine = annotations.loc[:, ["example_id", "annotator_id"]]
    mine = mine.join(per_label, on=["example_id", "annotator_id"]).dropna(subset=["quality"])
    last = mine.groupby("annotator_id", sort=True).tail(window)
    return last.groupby("annotator_id")["quality"].agg(quality="mean", labels="size")


def flagged_ids(annotators: pd.DataFrame) -> frozenset:
    """The annotator ids :func:`watch` flagged (none when the column is missing)."""
    if "flagged" not in annotators:
        return frozenset()
    flagged = annotators["flagged"].astype(str).str.lower() == "true"  # a bool, or read back from annotators.csv
    return frozenset(annotators.loc[flagged, "annotator_id"].astype(str))


def _by_annotator(frame: pd.DataFrame | None, column: str) -> pd.Series:
    if frame is None or column not in frame or "annotator_id" not in frame:
        return pd.Series(dtype=float)
    return frame.set_index(frame["annotator_id"].astype(str))[column].astype(float)
