"""Simulated annotators: answer a batch from a pool of not-yet-collected answers."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_answers(batch: pd.DataFrame, pool: pd.DataFrame, collected: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """At most one answer per batch row, in batch order.

    Parameters
    ----------
    batch : DataFrame with example_id, suggested_annotator (may be empty)
    pool : DataFrame with example_id, annotator_id, label: answers not yet collected
    collected : DataFrame with example_id, annotator_id: annotations so far

    An answer is handed out at most once and only if it is in ``pool`` and not in
    ``collected``. Preference: the suggested annotator, then annotators already
    seen in ``collected`` (as the ActiveLab tutorial does), then anyone; ties are
    drawn with ``default_rng(seed)``. A row with no answer left yields nothing.
    """
    rng = np.random.default_rng(seed)
    taken = set(zip(collected["example_id"], collected["annotator_id"]))
    seen = set(collected["annotator_id"])
    by_example = {e: g for e, g in pool.groupby("example_id", sort=False)}
    rows = []
    for example, suggested in zip(batch["example_id"], batch.get("suggested_annotator", [""] * len(batch))):
        options = by_example.get(example)
        if options is None:
            continue
        free = options[[(example, a) not in taken for a in options["annotator_id"]]]
        if free.empty:
            continue
        if isinstance(suggested, str) and suggested in set(free["annotator_id"]):
            pick = free[free["annotator_id"] == suggested].iloc[0]
        else:
            preferred = free[free["annotator_id"].isin(seen)]
            choices = preferred if len(preferred) else free
            pick = choices.iloc[int(rng.integers(len(choices)))]
        taken.add((example, pick["annotator_id"]))
        rows.append({"example_id": example, "annotator_id": pick["annotator_id"], "label": pick["label"]})
    return pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"])
