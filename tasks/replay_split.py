"""A simulation's protocol applied to a replay: the evaluation split and the starting annotations.

The evaluation split is the dataset's gold **test** split (held out from the pool when
the data has none), or, with ``evaluate="validation"``, a **validation** split carved
from the pool instead (the test split is then left out entirely): defaults are chosen
on validation runs, never on a benchmark's test split. A validation example's gold is
the dataset's gold where it has one, else the majority of all the annotations the
dataset holds for it (examples whose annotations tie are not used). Pool examples
without gold get the same majority as gold, so that consensus accuracy (the round's
consensus labels against it) can be measured on every dataset; rounds never see it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from crowdloop.tasks.import_formats import ANSWERS, Replay, check_replay
from crowdloop.tasks.import_values import ImportFormatError


def split_for_simulation(replay: Replay, *, seed: int, n_start: int, labels_per_start: int,
                         test_size: float | int | None = None, redraw_start: bool = False,
                         evaluate: str = "test", validation_size: float = 0.2) -> Replay:
    """Prepare a replay for the protocol: the evaluation split and the starting annotations.

    If there is no test split, ``test_size`` examples with gold (a fraction or a count,
    stratified by gold) become the test split and their annotations are dropped. With
    ``evaluate="validation"``, ``validation_size`` (a fraction of the pool) of the pool
    examples that hold no starting annotation become the evaluation split instead
    (stored as split ``test``), and the test split is dropped. Then, if ``initial`` is
    empty (or ``redraw_start`` returns it to ``uncollected`` first), ``n_start`` pool
    examples with at least ``labels_per_start`` annotations are drawn and
    ``labels_per_start`` of each one's annotations move from ``uncollected`` to
    ``initial``. A replay that has both (the tutorial's) comes back unchanged in test
    mode. Deterministic per seed. The protocol's values are checked by the caller
    (``simulation_protocol.check_simulation``, before the data is read).
    """
    examples, initial, uncollected = (f.reset_index(drop=True)
                                      for f in (replay.examples, replay.initial, replay.uncollected))
    if redraw_start:
        initial, uncollected = initial.iloc[:0], pd.concat([initial, uncollected], ignore_index=True)
    if not (examples["split"] == "test").any():
        held = _hold_out(examples, test_size, seed)
        examples = examples.assign(split=np.where(examples["example_id"].isin(held), "test", "pool"))
        initial = initial[~initial["example_id"].isin(held)]
        uncollected = uncollected[~uncollected["example_id"].isin(held)]
    if evaluate == "validation":
        examples, initial, uncollected = _validation(examples, initial, uncollected, validation_size, seed)
    # Consensus accuracy needs a reference on the pool: the majority of all the annotations the
    # dataset holds where it has no gold (never shown to a round; only metrics read pool gold).
    reference = _reference_labels(examples[examples["split"] == "pool"], pd.concat([initial, uncollected]))
    missing = (examples["split"] == "pool") & examples["gold"].isna()
    examples.loc[missing, "gold"] = examples.loc[missing, "example_id"].map(reference)
    examples["gold"] = examples["gold"].astype(object).where(examples["gold"].notna(), None)
    if initial.empty and n_start:
        initial, uncollected = _draw_start(uncollected, n_start=n_start, labels_per_start=labels_per_start,
                                           seed=seed)
    result = Replay(examples.reset_index(drop=True), initial.loc[:, ANSWERS].reset_index(drop=True),
                    uncollected.loc[:, ANSWERS].reset_index(drop=True), replay.classes)
    check_replay(result, source="split_for_simulation")
    return result


def _hold_out(examples: pd.DataFrame, test_size: float | int | None, seed: int) -> set:
    if test_size is None:
        raise ImportFormatError("the dataset has no test split; pass test_size to hold out gold examples as one.")
    golden = examples.dropna(subset=["gold"])
    if golden.empty:
        raise ImportFormatError("the dataset has no test split and no gold labels to hold one out; "
                                "import gold labels (gold_col or examples_gold_col) or a test file.")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    try:
        _, held = next(splitter.split(np.zeros(len(golden)), golden["gold"].to_numpy()))
    except ValueError as err:
        raise ImportFormatError(f"cannot hold out a stratified test split of {test_size} from "
                                f"{len(golden)} gold examples ({err}).") from err
    return set(golden["example_id"].iloc[held])


def _validation(examples: pd.DataFrame, initial: pd.DataFrame, uncollected: pd.DataFrame, size: float,
                seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The pool's validation split as the new ``test`` split (the old one dropped)."""
    pool = examples[examples["split"] == "pool"]
    reference = _reference_labels(pool, uncollected)
    candidates = reference[~reference.index.isin(initial["example_id"])]
    wanted = int(round(size * len(pool)))
    if wanted < 2 or candidates.nunique() < 2 or wanted > len(candidates) - candidates.nunique():
        raise ImportFormatError(f"cannot carve a validation split of {size:g} of the {len(pool)} pool examples "
                                f"from the {len(candidates)} that have a gold or majority label and no starting "
                                "annotation; lower validation_size.")
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=wanted, random_state=seed)
    _, held = next(splitter.split(np.zeros(len(candidates)), candidates.to_numpy()))
    chosen = candidates.iloc[held]
    kept = examples[examples["split"] == "pool"].copy()
    in_validation = kept["example_id"].isin(chosen.index)
    kept.loc[in_validation, "split"] = "test"
    kept.loc[in_validation, "gold"] = kept.loc[in_validation, "example_id"].map(chosen)
    return (kept.reset_index(drop=True), initial[~initial["example_id"].isin(chosen.index)],
            uncollected[~uncollected["example_id"].isin(chosen.index)])


def _reference_labels(pool: pd.DataFrame, answers: pd.DataFrame) -> pd.Series:
    """example_id -> the gold label where known, else the strict majority of ``answers`` (ties left out)."""
    counts = answers.groupby(["example_id", "label"]).size().unstack(fill_value=0)
    top = counts.max(axis=1)
    unique_top = counts.eq(top, axis=0).sum(axis=1) == 1
    majority = counts[unique_top].idxmax(axis=1)
    gold = pool.set_index("example_id")["gold"].dropna()
    reference = pd.concat([gold, majority[~majority.index.isin(gold.index)]])
    return reference[reference.index.isin(pool["example_id"])].astype(str)


def _draw_start(uncollected: pd.DataFrame, *, n_start: int, labels_per_start: int, seed: int):
    rng = np.random.default_rng(seed)
    counts = uncollected["example_id"].value_counts()
    eligible = np.sort(counts.index[counts >= labels_per_start].to_numpy(dtype=str))
    if len(eligible) < n_start:
        raise ImportFormatError(f"only {len(eligible)} pool examples have {labels_per_start} annotations; "
                                f"cannot start with {n_start}; lower n_start or labels_per_start "
                                "(--start-size, --labels-per-start).")
    start = rng.choice(eligible, size=n_start, replace=False)
    candidates = uncollected[uncollected["example_id"].isin(set(start))]
    shuffled = candidates.assign(_key=rng.random(len(candidates))).sort_values(["example_id", "_key"])
    chosen = shuffled.groupby("example_id").head(labels_per_start).index
    return uncollected.loc[chosen, ANSWERS], uncollected.drop(index=chosen)
