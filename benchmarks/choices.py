"""Model, consensus and selection settings re-checked on validation splits: each choice against the defaults.

    python benchmarks/choices.py [--seeds 3] [--data politeness,rte,hs_brexit,demo]
                                 [--choices all] [--out benchmarks/out/choices]

Runs the default strategy's arm (``auto``) of `crowdloop simulate --evaluate validation`
once with params.yaml as it is and once per choice (one setting changed, or another
strategy's arm in place of ``auto``), on every dataset (``demo``: crowdloop's generated
tickets, a noisy crowd, only when named), and prints per dataset and choice the mean over
rounds of validation accuracy, macro-F1 and consensus accuracy (± the standard error over seeds) and the difference to
the defaults, seeds paired. Validation splits are carved from the pool (the test split
is never read): this is how crowdloop's defaults are chosen.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from _compare import ROOT, SHARED_CACHE, SOURCES, dataset_args, demo_args, simulate
from crowdloop.cli import exit_frozen
from crowdloop.tasks import config, report

CHOICES = {
    "defaults": {},
    "no n-grams": {"model": {"head": {"ngrams": False}}},
    "last-layer pooling": {"model": {"head": {"pooling": "last"}}},
    "best_quality consensus": {"consensus": {"crowdlab_label": "best_quality"}},
    "no class weights": {"model": {"class_weight": "none"}},
    "consensus ignores signal": {"consensus": {"require_signal": False}},
    "consensus-quality sample weights": {"model": {"sample_weights": "consensus_quality"}},
    "uncalibrated CROWDLAB": {"consensus": {"calibrate_probs": False}},
    "pair features": {"model": {"head": {"pairs": True}}},
    "max_length 128": {"model": {"max_length": 128}},
    "k-center 0.25": {"select": {"kcenter_weight": 0.25}},
    "k-center 0.5": {"select": {"kcenter_weight": 0.5}},
    "near-duplicates 0.9": {"select": {"duplicate_threshold": 0.9}},
    "margin strategy": {},
}
# A choice that is another strategy's arm, run in place of auto with the defaults.
ARMS = {"margin strategy": "margin"}
# A choice that changes nothing elsewhere; margin in place of auto only where the model has signal
# (elsewhere auto runs score.no_signal_strategy, and margin would be measured against that).
ONLY = {"pair features": ("rte",), "margin strategy": ("politeness", "demo")}
METRICS = ("accuracy", "macro_f1", "consensus_accuracy")


def params_file(out: Path, name: str, changes: dict) -> Path:
    """params.yaml with ``changes`` laid over it, written to out/<name>.yaml."""
    def lay(base: dict, over: dict) -> dict:
        return {k: lay(base[k], v) if isinstance(v, dict) else v for k, v in over.items()} | \
            {k: v for k, v in base.items() if k not in over}

    params = lay(yaml.safe_load(config.template_text()), changes)
    path = out / f"{name.replace(' ', '_')}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    config.load(path)  # fails here, not after an hour, if a choice is mistyped
    return path


def per_seed(curves: pd.DataFrame, metric: str) -> pd.Series:
    """Each seed's mean over rounds of ``metric``."""
    return curves.groupby("seed")[report.column(metric)].mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", default=",".join(SOURCES), help="comma-separated, of "
                        f"{', '.join(SOURCES)}, demo")
    parser.add_argument("--choices", default="all", help=f"comma-separated, of {', '.join(CHOICES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "choices")
    args = parser.parse_args()
    chosen = list(CHOICES) if args.choices == "all" else ["defaults", *args.choices.split(",")]
    rows = []
    for dataset in args.data.split(","):
        flags = demo_args(args.out / "demo_data") if dataset == "demo" else dataset_args(dataset)[0]
        base = None
        for name in dict.fromkeys(chosen):
            if dataset not in ONLY.get(name, (dataset,)):
                continue
            out = args.out / dataset / name.replace(" ", "_")
            simulate([*flags, "--seeds", str(args.seeds), "--strategies", ARMS.get(name, "auto"),
                      "--evaluate", "validation",
                      "--params", str(params_file(args.out, name, CHOICES[name])), "--out", str(out),
                      *SHARED_CACHE])
            curves = pd.read_csv(out / "curves.csv")
            base = curves if name == "defaults" else base
            row = {"dataset": dataset, "choice": name}
            for metric in METRICS:
                mine = per_seed(curves, metric)
                row[metric] = f"{mine.mean():.3f} ± {mine.std(ddof=1) / np.sqrt(len(mine)):.3f}"
                if base is not None and name != "defaults":
                    diff = mine - per_seed(base, metric)
                    row[f"{metric} vs defaults"] = f"{diff.mean():+.3f} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.3f}"
            rows.append(row)
            table = pd.DataFrame(rows).fillna("")
            table.to_csv(args.out / "table.csv", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
    exit_frozen(0)  # as the `crowdloop` command exits: without the interpreter's last collections
