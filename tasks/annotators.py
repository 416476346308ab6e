"""Simulated annotators: answer a batch from the answers not yet collected."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from crowdloop.tasks.schema import ANSWER_COLUMNS


def simulate_answers(batch: pd.DataFrame, uncollected: pd.DataFrame, collected: pd.DataFrame, *,
                     seed: int, excluded: frozenset = frozenset()) -> pd.DataFrame:
    """At most one answer per batch row, in batch order.

    Parameters
    ----------
    batch : DataFrame of shape (B, >=1)
        example_id, and optionally suggested_annotator (empty or None: no suggestion).
    uncollected : DataFrame of shape (P, 3)
        example_id, annotator_id, label: the answers annotators would give.
    collected : DataFrame of shape (C, >=2)
        example_id, annotator_id, ...: annotations already stored.
    seed : seeds each answer's place in line: of the equally preferred annotators, the one
        whose answer drew the lowest number answers. The draws depend on ``seed`` and
        ``uncollected`` alone, not on the batch or on what was collected, so two strategies
        that ask for the same example with the same seed hear the same annotator, whichever
        round they ask in, as long as the same annotators are free and seen for it (common
        random numbers: the difference between them is the strategies', not the draws')
    excluded : annotators who never answer (flagged ones: routing asks them nothing)

    Returns
    -------
    DataFrame of shape (<=B, 3)
        example_id, annotator_id, label. An answer is handed out only if it is in
        ``uncollected``, not in ``collected`` and not handed out earlier in this call.
        Preference: the suggested annotator, then a random annotator already seen
        in ``collected`` (as the ActiveLab tutorial does, so the annotator set
        stays small), then a random one. A row with no answer left yields nothing.
    """
    draws = np.random.default_rng(seed).random(len(uncollected))
    taken = set(zip(collected["example_id"], collected["annotator_id"]))
    seen = set(collected["annotator_id"])
    offers: dict = {}
    for draw, example, annotator, label in zip(draws, uncollected["example_id"], uncollected["annotator_id"],
                                              uncollected["label"]):
        offers.setdefault(example, []).append((draw, annotator, label))
    suggestions = batch["suggested_annotator"] if "suggested_annotator" in batch else [None] * len(batch)
    rows = []
    for example, suggested in zip(batch["example_id"], suggestions):
        free = [offer for offer in offers.get(example, ())
                if (example, offer[1]) not in taken and offer[1] not in excluded]
        if not free:
            continue
        asked = [offer for offer in free if _given(suggested) and offer[1] == suggested]
        known = [offer for offer in free if offer[1] in seen]
        _, annotator, label = min(asked or known or free)
        taken.add((example, annotator))
        rows.append((example, annotator, label))
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))


def busiest(uncollected: pd.DataFrame) -> str:
    """The annotator who holds the most answers in ``uncollected`` (ties: the smaller id)."""
    counts = uncollected["annotator_id"].value_counts()
    return str(min(counts.index[counts == counts.max()]))


def at_random(answers: pd.DataFrame, annotator: str, *, classes, seed: int) -> pd.DataFrame:
    """``answers`` (ANSWER_COLUMNS) with ``annotator``'s labels replaced by uniform draws over ``classes``
    (an annotator who stopped reading: what ``routing.min_quality`` should catch in a simulation).
    Each example's draw depends on ``seed`` and the example alone, so every arm of a seed hears the
    same random label for it (as :func:`simulate_answers` gives every arm the same annotator)."""
    mine = (answers["annotator_id"] == annotator).to_numpy()
    pick = [np.random.default_rng([seed, zlib.crc32(str(example).encode())]).integers(len(classes))
            for example in answers.loc[mine, "example_id"]]
    out = answers.copy()
    out.loc[mine, "label"] = np.asarray(classes, dtype=object)[pick] if pick else []
    return out


def holders(uncollected: pd.DataFrame, collected: pd.DataFrame) -> dict[str, set]:
    """example_id -> annotators whose answer is in ``uncollected`` but not yet in ``collected``
    (simulation routing).

    Examples with no answer left are absent.
    """
    pairs, free = _free_pairs(uncollected, collected)
    out: dict[str, set] = {}
    for example, annotator in zip(pairs["example_id"][free], pairs["annotator_id"][free]):
        out.setdefault(example, set()).add(annotator)
    return out


def _free_pairs(uncollected: pd.DataFrame, collected: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct (example_id, annotator_id) pairs of ``uncollected`` and whether each is not yet collected."""
    taken = set(zip(collected["example_id"], collected["annotator_id"]))
    pairs = uncollected.loc[:, ["example_id", "annotator_id"]].drop_duplicates()
    free = np.array([(e, a) not in taken for e, a in zip(pairs["example_id"], pairs["annotator_id"])], dtype=bool)
    return pairs, free


def _given(suggested) -> bool:
    """A suggestion is absent when it is None, NaN (an empty CSV cell) or blank."""
    if isinstance(suggested, str):
        return suggested.strip() != ""
    return suggested is not None and not pd.isna(suggested)
