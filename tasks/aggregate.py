"""One-shot aggregation: every consensus method on a whole dataset's annotations, against its gold.

``crowdloop aggregate`` (and ``benchmarks/consensus.py``) read a multi-annotator dataset and
aggregate all of its annotations at once, with no model and no rounds: the crowdsourcing
field's usual comparison. Besides all the labels, each example's labels can be subsampled
to ``k`` per example (seeded draws; examples with fewer than ``k`` keep all of theirs).
CROWDLAB needs a model's out-of-sample probabilities, which a one-shot aggregation does not
have; it is compared in the simulation's consensus bake-off instead (``--consensus``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdloop.tasks import agreement
from crowdloop.tasks.consensus import consensus, to_wide
from crowdloop.tasks.errors import ConfigError

ALL = 0  # labels_per_item value meaning "every label"
TIE = 0.0005  # methods this close to the best mean accuracy share first place
MAX_SEED = 2**31 - 1  # the draws add to the seed; MACE's random_state must stay below 2**32
MODEL_FREE = ("majority", "dawid_skene", "one_coin_dawid_skene", "glad", "mace", "wawa", "zero_based_skill")


def label_counts(text: str) -> list[int]:
    """``--labels-per-item``: comma-separated counts and ``all`` -> [k, ..., :data:`ALL`]; ConfigError otherwise."""
    counts = []
    for part in (p.strip() for p in text.split(",")):
        if part == "all":
            counts.append(ALL)
        elif part.isdigit() and int(part) >= 1:
            counts.append(int(part))
        elif part:
            raise ConfigError(f"--labels-per-item has {part!r}; give 'all' or whole numbers of at least 1, "
                              "comma-separated (e.g. all,1,3).")
    if not counts:
        raise ConfigError("--labels-per-item is empty; give 'all' or whole numbers of at least 1 (e.g. all,1,3).")
    return list(dict.fromkeys(counts))  # a count named twice would be drawn, and averaged, twice


def subsample(annotations: pd.DataFrame, k: int, *, seed: int) -> pd.DataFrame:
    """At most ``k`` annotations per example, drawn uniformly without replacement (``k`` = :data:`ALL`: all)."""
    if k == ALL:
        return annotations
    rng = np.random.default_rng(seed)
    order = annotations.assign(_draw=rng.random(len(annotations)))
    order = order.sort_values(["example_id", "_draw"], kind="stable")
    kept = order[order.groupby("example_id").cumcount() < k]
    return kept.drop(columns="_draw").sort_index()


def from_replay(replay, *, methods: Sequence[str], labels_per_item: Sequence[int], draws: int,
                seed: int) -> pd.DataFrame:
    """:func:`one_shot` on every annotation of ``replay`` (import_formats.Replay), scored on the
    examples that have a gold label; ConfigError for what cannot run."""
    model_bound = [m for m in methods if m not in MODEL_FREE]
    if model_bound:
        raise ConfigError(f"{model_bound[0]} needs a model's probabilities, which a one-shot aggregation has none "
                          f"of; choose among {', '.join(MODEL_FREE)} (simulate --consensus compares it).")
    if not labels_per_item or any(k < 0 for k in labels_per_item):
        raise ConfigError(f"labels per item are {list(labels_per_item)}; give 'all' ({ALL}) or counts of at least 1.")
    if draws < 1:
        raise ConfigError(f"--draws is {draws}; draw at least 1 subsample per label count.")
    if not 0 <= seed <= MAX_SEED:  # NumPy takes no negative seed, crowd-kit's MACE none from 2**32 on
        raise ConfigError(f"--seed is {seed}; give a whole number from 0 to {MAX_SEED}.")
    gold = replay.examples.dropna(subset=["gold"]).set_index("example_id")["gold"].astype(str)
    if gold.empty:
        raise ConfigError("the dataset has no gold labels to score the aggregations against; "
                          "name its gold column (--gold-col or --examples-gold-col).")
    annotations = pd.concat([replay.initial, replay.uncollected], ignore_index=True)
    if not annotations["example_id"].isin(gold.index).any():
        raise ConfigError(f"none of the {len(gold)} examples with a gold label has an annotation (a tutorial-format "
                          "test split has gold labels only), so there is nothing to score; aggregate a dataset "
                          "whose annotated examples have gold labels.")
    return one_shot(annotations, gold, classes=replay.classes, methods=methods, labels_per_item=labels_per_item,
                    draws=draws, seed=seed)


def one_shot(annotations: pd.DataFrame, gold: pd.Series, *, classes: Sequence[str], methods: Sequence[str],
             labels_per_item: Sequence[int], draws: int, seed: int) -> pd.DataFrame:
    """Accuracy of every method against ``gold`` at every label count.

    Every annotation is aggregated (an annotator's labels on examples without gold still tell the
    methods how good they are: the crowdsourcing field's "gold questions" setting); the examples
    with gold are scored.

    Parameters
    ----------
    annotations : DataFrame with columns example_id, annotator_id, label (class name)
    gold : Series example_id -> gold class name; only these examples are scored.
    classes : the class names.
    methods : consensus methods (model-free ones: :data:`MODEL_FREE`).
    labels_per_item : label counts per example, :data:`ALL` = every label (drawn once).
    draws : seeded subsamples per label count below all.

    Returns
    -------
    DataFrame with one row per method x label count x draw: ``method``, ``labels_per_item``
    (``all`` or the count), ``draw``, ``accuracy``, ``examples`` (scored), ``annotations`` (aggregated),
    ``krippendorff_alpha`` (of the subsample).
    """
    index = {name: i for i, name in enumerate(classes)}
    rows = []
    for k in labels_per_item:
        for draw in range(1 if k == ALL else draws):
            sample = subsample(annotations, k, seed=seed + 1000 * k + draw)
            wide = to_wide(sample.assign(label=sample["label"].map(index)),
                           example_ids=pd.unique(sample["example_id"]))
            scored = wide.index.isin(gold.index)
            truth = gold.reindex(wide.index[scored]).map(index).to_numpy()
            alpha = agreement.krippendorff_alpha(wide.to_numpy(), len(classes))
            for method in methods:
                agreed = consensus(wide, None, method=method, classes=classes, calibrate_probs=False,
                                   crowdlab_label="majority_vote", seed=seed + draw)
                accuracy = float((agreed.examples["consensus_label"].to_numpy()[scored] == truth).mean())
                rows.append({"method": method, "labels_per_item": "all" if k == ALL else k, "draw": draw,
                             "accuracy": accuracy, "examples": int(scored.sum()), "annotations": len(sample),
                             "krippendorff_alpha": alpha})
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std accuracy (over draws) of every method at every label count: a method x count table
    of strings, and the best method per count in the last row with its lead over the runner-up (or
    ``tie:`` and every method within 0.0005 of the best; the method alone when it is the only one)."""
    stats = results.groupby(["labels_per_item", "method"], sort=False)["accuracy"].agg(["mean", "std"])
    cells = stats.apply(lambda r: f"{r['mean']:.3f}" + ("" if r["std"] != r["std"] else f" ± {r['std']:.3f}"),
                        axis=1)
    table = cells.unstack("labels_per_item")
    best = {}
    for k, group in stats["mean"].groupby(level=0, sort=False):
        ranked = group.droplevel(0).sort_values(ascending=False, kind="stable")
        tied = ranked.index[ranked >= ranked.iloc[0] - TIE]
        if len(tied) > 1:
            best[k] = "tie: " + ", ".join(tied)
        elif len(ranked) == 1:  # one method: no runner-up to lead
            best[k] = ranked.index[0]
        else:
            best[k] = f"{ranked.index[0]} (+{ranked.iloc[0] - ranked.iloc[1]:.3f})"
    table.loc["best (lead)"] = pd.Series(best)
    return table
