"""SetFit-style contrastive tuning of the sentence encoder against the frozen encoder, on validation splits.

    python benchmarks/contrastive.py --data hs_brexit,rte --n 300 --seeds 3

Does tuning all-MiniLM-L6-v2 on pairs of labeled texts (same class: cosine 1, different: 0, as
SetFit does) give the head more signal than the frozen encoder where it has little? Per dataset
and seed: n labeled texts drawn from a training part, the encoder tuned on 10 pairs per text
(one epoch, AdamW 2e-5, batch 16), then crowdloop's logistic head (C by inner CV, balanced
class weights, no n-grams) on the frozen and on the tuned embeddings (last-layer and
layer-mean pooling), macro-F1 and balanced accuracy on a validation part. Never a test split:
HS-Brexit trains on _train and scores _dev (hard labels); RTE and politeness split their
pools 3:1 (RTE's expert gold; politeness's majority of 5 votes). Prints the tuning time.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, f1_score

from _compare import DATASETS
from crowdloop.tasks import importers
from crowdloop.tasks.config import HeadConfig
from crowdloop.tasks.models.base import resolve_model_name
from crowdloop.tasks.models.logistic import fit_head, predict_head

HEAD = HeadConfig(C_grid=[0.1, 1.0, 10.0, 100.0], inner_folds=3, ngrams=False, pooling="layers", pairs=False)


def load(name: str) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """(training texts, class indices, validation texts, class indices) of ``name``, read as
    `crowdloop simulate` reads it (tasks/importers.py); the test split is never read."""
    folder = DATASETS / name
    if name == "hs_brexit":
        replay = importers.from_lewidi(folder)
    elif name == "rte":
        replay = importers.from_long(folder / "rte.standardized.tsv", examples_file=folder / "rte1.tsv",
                                     example_col="orig_id", annotator_col="!amt_worker_ids", label_col="response",
                                     gold_col="gold", examples_id_col="id", text_cols=("text", "hypothesis"))
    elif name == "politeness":
        replay = importers.from_tutorial(folder)
    else:
        raise SystemExit(f"unknown dataset {name!r}: hs_brexit, rte or politeness")
    pool = replay.examples[replay.examples["split"] == "pool"].reset_index(drop=True)
    if pool["gold"].isna().any():  # politeness: the majority of each example's 5 annotations
        answers = pd.concat([replay.initial, replay.uncollected])
        majority = answers.groupby("example_id")["label"].agg(lambda votes: votes.mode().iloc[0])
        pool["gold"] = pool["example_id"].map(majority)
    texts = pool["text"].tolist()
    labels = pool["gold"].map({c: i for i, c in enumerate(replay.classes)}).to_numpy(dtype=int)
    if name == "hs_brexit":  # its own validation split: train on _train, score _dev
        dev = pool["example_id"].str.startswith("dev-").to_numpy()
        train_at, held_at = np.flatnonzero(~dev), np.flatnonzero(dev)
    else:
        order = np.random.default_rng(123).permutation(len(texts))
        train_at, held_at = order[:len(texts) * 3 // 4], order[len(texts) * 3 // 4:]
    return ([texts[i] for i in train_at], labels[train_at], [texts[i] for i in held_at], labels[held_at])


def embed(model, tokenizer, texts: list[str], *, layers: bool) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=64,
                              return_tensors="pt")
            states = model(**batch, output_hidden_states=True)
            hidden = torch.stack(states.hidden_states[1:]).mean(0) if layers else states.last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy())
    return np.concatenate(out)


def tune(name: str, tokenizer, texts: list[str], labels: np.ndarray, seed: int, pairs_per_text: int = 10):
    """The encoder tuned SetFit's way: cosine of mean-pooled pairs towards 1 (same class) or 0."""
    import torch
    from transformers import AutoModel

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = AutoModel.from_pretrained(name).train()
    members = {c: np.flatnonzero(labels == c).tolist() for c in np.unique(labels)}
    pairs = []
    for i, c in enumerate(labels):
        for _ in range(pairs_per_text // 2):
            pairs.append((i, rng.choice(members[c]), 1.0))
            pairs.append((i, rng.choice(members[rng.choice([o for o in members if o != c])]), 0.0))
    rng.shuffle(pairs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def pooled(idx):
        batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=64, return_tensors="pt")
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)

    for start in range(0, len(pairs), 16):
        chunk = pairs[start:start + 16]
        cosine = torch.nn.functional.cosine_similarity(pooled([a for a, _, _ in chunk]),
                                                       pooled([b for _, b, _ in chunk]))
        loss = ((cosine - torch.tensor([t for _, _, t in chunk])) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def score(train: np.ndarray, y: np.ndarray, held: np.ndarray, y_held: np.ndarray, seed: int) -> tuple[float, float]:
    weights = len(y) / (2 * np.bincount(y, minlength=2)[y])  # model.class_weight: balanced
    predicted = predict_head(fit_head(train, y, head=HEAD, n_classes=2, seed=seed, sample_weight=weights),
                             held).argmax(1)
    return f1_score(y_held, predicted, average="macro"), balanced_accuracy_score(y_held, predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="hs_brexit,rte")
    parser.add_argument("--n", type=int, default=300, help="labeled texts per seed")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    from transformers import AutoModel, AutoTokenizer

    name = resolve_model_name(None)
    tokenizer = AutoTokenizer.from_pretrained(name)
    frozen = AutoModel.from_pretrained(name)
    for dataset in args.data.split(","):
        texts, labels, held_texts, held_labels = load(dataset)
        results: dict[str, list] = {"frozen, layer mean": [], "frozen, last layer": [],
                                    "tuned, last layer": [], "tuned, layer mean": []}
        seconds = []
        held_frozen = {layers: embed(frozen, tokenizer, held_texts, layers=layers) for layers in (True, False)}
        for seed in range(args.seeds):
            pick = np.random.default_rng(seed).choice(len(labels), args.n, replace=False)
            chosen, y = [texts[i] for i in pick], labels[pick]
            for layers, key in ((True, "frozen, layer mean"), (False, "frozen, last layer")):
                results[key].append(score(embed(frozen, tokenizer, chosen, layers=layers), y, held_frozen[layers],
                                          held_labels, seed))
            start = time.perf_counter()
            tuned = tune(name, tokenizer, chosen, y, seed)
            seconds.append(time.perf_counter() - start)
            for layers, key in ((False, "tuned, last layer"), (True, "tuned, layer mean")):
                results[key].append(score(embed(tuned, tokenizer, chosen, layers=layers), y,
                                          embed(tuned, tokenizer, held_texts, layers=layers), held_labels, seed))
        print(f"{dataset}: {args.n} labeled texts, {args.seeds} seeds, tuning {np.median(seconds):.0f} s a model "
              f"(median)")
        for key, values in results.items():
            values = np.array(values)
            se = values[:, 0].std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            print(f"  {key:20s} macro-F1 {values[:, 0].mean():.3f} ± {se:.3f}   balanced accuracy "
                  f"{values[:, 1].mean():.3f}")


if __name__ == "__main__":
    main()
