"""The ActiveLab tutorial's round with a plain Hugging Face Trainer, and crowdloop's round, in one run.

    python benchmarks/round_speed.py [--model NAME_OR_DIR] [--steps 300] [--seeds 3]
                                     [--out benchmarks/out/round_speed.json]

The round (the tutorial's round 1 on the politeness data, read with crowdloop's
importer): 100 examples labeled by the majority vote of their 2 annotations; a
``--steps`` fine-tune on all of them, scored on the 678 gold test texts; 3 fold
fine-tunes, each predicting its held-out fold and the 1,400 unlabeled texts. Batch
``--batch`` (8), length ``--length`` (48). Both sides get the same texts, labels, folds,
seeds and optimiser settings (crowdloop's params.yaml: learning rate, weight decay,
warm-up, gradient clipping); neither weights examples.

* ``trainer``: what the tutorial does, with `transformers.Trainer` (fp32, padding to
  ``--length``, the Trainer's default evaluation batch of 8); the model loaded per fit.
* ``crowdloop``: ``load_backend`` + ``train_and_predict`` with ``model.backend: finetune``
  (the k fold models and the full model trained together; embeddings included).

Then pool inference alone: ``--inference-texts`` texts at length ``--inference-length``
(64) through crowdloop's ``predict_proba``, in texts/s. Goals (issue 13, a H100/H200):
trainer/crowdloop >= 10, crowdloop's round <= 3 s, the same test accuracy, >= 20,000
texts/s for MiniLM. Prints a table and writes every figure to ``--out`` as JSON (device,
date, commit). A quick CPU check: ``--model <a tiny model dir> --steps 5 --seeds 1``.
The Trainer side needs ``accelerate`` (``pip install -e '.[bench]'``). Never part of the test run.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _compare import DATASETS, ROOT
from crowdloop.tasks import config as config_mod, consensus, importers, models, round_data, version
from crowdloop.tasks.models.base import resolve_model_name
from crowdloop.tasks.predict import fold_assignment
from crowdloop.tasks.store import Campaign
from crowdloop.tasks.train import TrainingSet, train_and_predict


@dataclasses.dataclass(frozen=True)
class Round:
    """The tutorial's round 1: labeled texts and their majority-vote class indices, the pool, the gold test split."""

    labeled: list[str]
    labels: np.ndarray
    unlabeled: list[str]
    test: list[str]
    test_gold: np.ndarray


def politeness_round(seed: int) -> Round:
    replay = importers.from_tutorial(DATASETS / "politeness")
    data = round_data.build(replay.examples, replay.initial, classes=replay.classes)
    wide = consensus.to_wide(data.annotations, example_ids=data.labeled_ids)
    agreed = consensus.consensus(wide, None, method="majority", classes=data.classes, calibrate_probs=False,
                                 crowdlab_label="majority_vote", seed=seed)
    return Round(data.texts_of(data.labeled_ids), round_data.consensus_labels(data, agreed),
                 data.texts_of(data.unlabeled_ids), data.texts_of(data.test_ids), data.test_gold)


def trainer_round(r: Round, model_cfg, *, seed: int, folds: int) -> dict:
    """The tutorial's get_trainer / get_pred_probs: a Trainer per fit, from the pretrained weights."""
    import transformers
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, PrinterCallback, Trainer,
                              TrainingArguments)

    name, ft = resolve_model_name(model_cfg.name), model_cfg.finetune
    tokenizer = AutoTokenizer.from_pretrained(name)

    def dataset(texts, labels=None):
        columns = {"text": list(texts)} | ({} if labels is None else {"label": [int(v) for v in labels]})
        return Dataset.from_dict(columns).map(
            lambda batch: tokenizer(batch["text"], padding="max_length", truncation=True,
                                    max_length=model_cfg.max_length), batched=True)

    def fit(texts, labels, fit_seed, out_dir):
        transformers.set_seed(fit_seed)
        model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=int(r.labels.max()) + 1)
        args = TrainingArguments(output_dir=out_dir, max_steps=ft.steps,
                                 per_device_train_batch_size=model_cfg.minibatch_size, learning_rate=ft.learning_rate, weight_decay=ft.weight_decay,
                                 warmup_steps=ft.warmup_ratio, max_grad_norm=ft.max_grad_norm or 0.0, seed=fit_seed,
                                 report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=dataset(texts, labels))
        trainer.remove_callback(PrinterCallback)  # its end-of-training metrics line, not a cost
        trainer.train()
        return trainer

    start = time.perf_counter()
    inference = {"texts": 0, "seconds": 0.0}

    def predict(trainer, texts):
        began = time.perf_counter()
        logits = trainer.predict(dataset(texts)).predictions
        inference["texts"] += len(texts)
        inference["seconds"] += time.perf_counter() - began
        return logits

    with tempfile.TemporaryDirectory() as out_dir:
        full = fit(r.labeled, r.labels, seed, out_dir)
        accuracy = float((predict(full, r.test).argmax(axis=1) == r.test_gold).mean())
        assignment = fold_assignment(r.labels, folds=folds, seed=seed)
        texts = np.array(r.labeled, dtype=object)
        for fold in range(int(assignment.max()) + 1):
            trainer = fit(texts[assignment != fold], r.labels[assignment != fold], seed + 1 + fold, out_dir)
            predict(trainer, list(texts[assignment == fold]))
            predict(trainer, r.unlabeled)
    return {"seconds": time.perf_counter() - start, "test_accuracy": accuracy,
            "inference_texts_per_s": inference["texts"] / inference["seconds"]}


def crowdloop_round(r: Round, model_cfg, *, seed: int, folds: int) -> dict:
    start = time.perf_counter()
    backend = models.load_backend(model_cfg)
    loaded = time.perf_counter() - start
    training = TrainingSet(r.labeled, r.labels, r.unlabeled, r.test)
    predictions, _ = train_and_predict(backend, training, n_classes=int(r.labels.max()) + 1, folds=folds, seed=seed)
    return {"seconds": time.perf_counter() - start, "load_seconds": loaded,
            "step_seconds": {k: round(v, 3) for k, v in predictions.seconds.items()},
            "test_accuracy": float((predictions.test_probs.argmax(axis=1) == r.test_gold).mean())}


def pool_inference(r: Round, model_cfg, *, texts: int, length: int, seed: int) -> dict:
    """crowdloop's predict_proba over ``texts`` pool texts (the pool repeated) at ``length`` tokens."""
    backend = models.load_backend(dataclasses.replace(model_cfg, max_length=length))
    fitted = backend.fit(backend.features(r.labeled), r.labels, n_classes=int(r.labels.max()) + 1, seed=seed)
    pool = (r.unlabeled * (texts // len(r.unlabeled) + 1))[:texts]
    X = backend.features(pool)
    backend.predict_proba(fitted, X[:backend.config.finetune.inference_batch_size])  # warm-up
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        backend.predict_proba(fitted, X)
        seconds.append(time.perf_counter() - start)
    return {"texts": texts, "max_length": length, "median_seconds": statistics.median(seconds),
            "texts_per_s": texts / statistics.median(seconds)}


def summary(runs: list[dict]) -> dict:
    accuracy = [run["test_accuracy"] for run in runs]
    return {"runs": runs, "median_seconds": statistics.median(run["seconds"] for run in runs),
            "test_accuracy_mean": statistics.mean(accuracy),
            "test_accuracy_sd": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0}


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def commit() -> str:
    try:
        return version.head(Campaign(ROOT))
    except Exception:  # a copy of the tree without .git (a device machine): pass --commit
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model.name (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=48)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--inference-texts", type=int, default=20000)
    parser.add_argument("--inference-length", type=int, default=64)
    parser.add_argument("--commit", default=None, help="the crowdloop commit measured (default: git HEAD)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "round_speed.json")
    args = parser.parse_args()
    if importlib.util.find_spec("accelerate") is None:  # before minutes of loading, not at the Trainer's first fit
        raise SystemExit("benchmarks/round_speed.py: its Trainer side needs accelerate: pip install -e '.[bench]'")
    for key, value in {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DO_NOT_TRACK": "true"}.items():
        os.environ.setdefault(key, value)
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    base = config_mod.load().model
    model_cfg = dataclasses.replace(base, backend="finetune", name=args.model, max_length=args.length,
                                    minibatch_size=args.batch, sample_weights="none",
                                    finetune=dataclasses.replace(base.finetune, steps=args.steps))
    r = politeness_round(seed=0)
    print(f"{device_name()}: {len(r.labeled)} labeled, {len(r.unlabeled)} unlabeled, {len(r.test)} test texts; "
          f"{args.steps} steps, batch {args.batch}, length {args.length}, {args.seeds} seeds", flush=True)
    warm = dataclasses.replace(model_cfg, finetune=dataclasses.replace(model_cfg.finetune, steps=2))
    small = dataclasses.replace(r, labeled=r.labeled[:24], labels=r.labels[:24], unlabeled=r.unlabeled[:16],
                                test=r.test[:16], test_gold=r.test_gold[:16])
    trainer_round(small, warm, seed=0, folds=args.folds)  # warm-up: CUDA context, kernels, file caches
    crowdloop_round(small, warm, seed=0, folds=args.folds)
    sides = {"trainer": [], "crowdloop": []}
    for seed in range(args.seeds):  # interleaved, so drift in the machine hits both sides alike
        sides["trainer"].append(trainer_round(r, model_cfg, seed=seed, folds=args.folds) | {"seed": seed})
        sides["crowdloop"].append(crowdloop_round(r, model_cfg, seed=seed, folds=args.folds) | {"seed": seed})
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1]['seconds']:.2f} s (test accuracy "
                                           f"{v[-1]['test_accuracy']:.3f})" for k, v in sides.items()), flush=True)
    result = {"device": device_name(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": args.commit or commit(), "torch": __import__("torch").__version__,
              "transformers": transformers.__version__, "model": resolve_model_name(args.model),
              "settings": {"steps": args.steps, "batch": args.batch, "length": args.length, "folds": args.folds,
                           "seeds": args.seeds, "labeled": len(r.labeled), "unlabeled": len(r.unlabeled),
                           "test": len(r.test), "finetune": dataclasses.asdict(model_cfg.finetune)},
              **{side: summary(runs) for side, runs in sides.items()}}
    result["ratio"] = result["trainer"]["median_seconds"] / result["crowdloop"]["median_seconds"]
    result["pool_inference"] = pool_inference(r, model_cfg, texts=args.inference_texts,
                                              length=args.inference_length, seed=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for side in sides:
        s = result[side]
        print(f"{side:>9}: median {s['median_seconds']:.2f} s, test accuracy {s['test_accuracy_mean']:.3f} "
              f"± {s['test_accuracy_sd']:.3f}")
    inference = result["pool_inference"]
    print(f"    ratio: {result['ratio']:.1f}x (trainer / crowdloop)\n"
          f"pool inference: {inference['texts_per_s']:,.0f} texts/s ({inference['texts']} texts, length "
          f"{inference['max_length']}); the Trainer's predict: "
          f"{statistics.median(run['inference_texts_per_s'] for run in sides['trainer']):,.0f} texts/s\n"
          f"written to {args.out}")


if __name__ == "__main__":
    main()
