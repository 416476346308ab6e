"""Consensus methods compared: one-shot on RTE, the bake-off on politeness, an annotator who goes bad.

    python benchmarks/consensus.py one-shot [--draws 5]
    python benchmarks/consensus.py bake-off [--seeds 3] [--methods majority,crowdlab,dawid_skene,glad,mace]
    python benchmarks/consensus.py goes-bad [--data demo] [--seeds 3] [--goes-bad 13] [--min-quality 0.5]

* ``one-shot``: `crowdloop aggregate` on Snow et al.'s RTE crowd labels (800 items x 10
  annotators, expert gold): accuracy of each method on all 800 items with every label, and with
  1, 3 and 5 labels per item (seeded subsamples, mean ± std over the draws); crowd-kit's own
  published accuracies are printed beside it (it publishes none for RTE).
* ``bake-off``: `crowdloop simulate` on politeness (tutorial preset, head backend): ActiveLab
  with each consensus method, and the random arm (majority vote); per arm the test accuracy
  and the consensus accuracy per round, and which method is best.
* ``goes-bad``: routed answering with a capacity per annotator (the best annotators fill up
  first); one annotator turns to random answers at round ``--goes-bad``; the same run with and
  without ``routing.min_quality``: when routing stopped asking them, and the two curves. On the
  generated demo tickets (``--data demo``, the default) or politeness.

Every part writes its tables (CSV, Markdown) and figures under ``--out`` (default
benchmarks/out/consensus/); ``--sims DIR ...`` summarises simulations already run instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import pandas as pd

from _compare import DATASETS, ROOT, SHARED_CACHE, crowdloop_command, dataset_args, demo_args, simulate
from crowdloop.tasks import report

# crowd-kit's published accuracies (Ustalov, Pavlichenko, Tseitlin: "Learning from Crowds with Crowd-Kit",
# JOSS 2024 / arXiv 2109.08584, table "Comparison of the implemented categorical aggregation methods").
# Datasets of Zheng et al. (2017); crowd-kit publishes no figure for RTE.
CROWDKIT_PUBLISHED = pd.DataFrame(
    {"D_Product": [0.897, 0.897, 0.940, 0.928, 0.929], "D_PosSent": [0.932, 0.951, 0.960, 0.948, 0.950],
     "S_Rel": [0.536, 0.557, 0.615, 0.511, 0.501], "S_Adult": [0.763, 0.766, 0.748, 0.760, 0.763]},
    index=pd.Index(["majority", "wawa", "dawid_skene", "glad", "mace"], name="method"))
BAKE_OFF = ("majority", "crowdlab", "dawid_skene", "glad", "mace")
# On the demo tickets (seed 0) with routing.capacity_per_annotator 10, routing asks a08 (accuracy 0.88) most:
# 98, 115 and 109 of the 300 answers of rounds 1-12 in seeds 0, 1, 2 (a07, the most accurate, about 60).
DEMO_BAD = "a08"
AT_ROUNDS = (5, 10, 25)


def one_shot(args) -> None:
    flags, _ = dataset_args("rte")
    flags = flags[:flags.index("--preset")]  # the reader flags only
    out = args.out / "rte_one_shot.csv"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = crowdloop_command(["aggregate", *flags, "--labels-per-item", "all,1,3,5", "--draws",
                                  str(args.draws), "--out", str(out)])
    if code:
        raise SystemExit(f"crowdloop aggregate failed with exit code {code}")
    printed = printed.getvalue()
    print(printed)
    results = pd.read_csv(out)
    means = results.groupby(["method", "labels_per_item"])["accuracy"].agg(["mean", "std"]).round(3)
    means.to_csv(args.out / "rte_one_shot_summary.csv")
    (args.out / "rte_one_shot.md").write_text(printed + "\ncrowd-kit's published accuracy (no RTE figure):\n"
                                              + CROWDKIT_PUBLISHED.to_string() + "\n")
    print("crowd-kit's published accuracy on other datasets (it publishes none for RTE):")
    print(CROWDKIT_PUBLISHED.to_string())


def bake_off(args) -> None:
    # one folder per call: a simulation's curves.csv holds the arms of its own call only
    folders = args.sims or [args.out / "bake_off", args.out / "bake_off_random"]
    if not args.sims:
        base = [str(DATASETS / "politeness"), "--format", "tutorial", "--preset", "tutorial", "--seeds",
                str(args.seeds), *SHARED_CACHE]
        simulate([*base, "--strategies", "activelab", "--consensus", args.methods, "--out", str(folders[0])])
        simulate([*base, "--strategies", "random", "--out", str(folders[1])])
    curves = pd.concat([pd.read_csv(Path(f) / "curves.csv") for f in folders], ignore_index=True)
    table = _at_rounds(curves, ("test_accuracy", "consensus_accuracy"))
    table.to_csv(args.out / "bake_off.csv")
    figure = report.plot(curves, title="politeness: ActiveLab with each consensus method, and random",
                         metrics=("accuracy", "consensus_accuracy"))
    figure.savefig(args.out / "bake_off.png", dpi=120)
    print(table.to_string())
    for metric in ("test_accuracy", "consensus_accuracy"):
        mean = table[(metric, "mean over rounds")].str.split(" ").str[0].astype(float).sort_values(ascending=False)
        print(f"best {metric} (mean over every round, i.e. per annotation): {mean.index[0]} {mean.iloc[0]:.3f}, "
              f"then {mean.index[1]} {mean.iloc[1]:.3f}")


def goes_bad(args) -> None:
    folders = args.sims or [args.out / f"goes_bad_{args.data}_without", args.out / f"goes_bad_{args.data}_with"]
    if not args.sims:
        data, bad = _goes_bad_data(args)
        for folder, rule in zip(folders, (None, args.min_quality)):
            params = folder.with_suffix(".yaml")
            routing = {"capacity_per_annotator": args.capacity, "min_quality": rule}
            params.parent.mkdir(parents=True, exist_ok=True)
            # One C for the head: on the 4-class demo its search over C_grid makes a round ~10x slower,
            # and both runs share the model either way.
            params.write_text("routing:\n" + "".join(f"  {k}: {'null' if v is None else v}\n"
                                                       for k, v in routing.items())
                              + "model:\n  head:\n    C_grid: [1.0]\n")
            simulate([*data, "--preset", "tutorial", "--seeds", str(args.seeds), "--strategies", "activelab",
                      "--answered-by", args.answered_by, "--goes-bad", str(args.goes_bad), *bad,
                      "--params", str(params), "--out", str(folder), *SHARED_CACHE])
    parts = []
    for folder, name in zip(folders, ("without routing.min_quality", "with routing.min_quality")):
        parts.append(pd.read_csv(Path(folder) / "curves.csv").assign(strategy=name))
    curves = pd.concat(parts, ignore_index=True)
    turn = args.goes_bad
    per_round = curves.pivot_table(index="round", columns="strategy",
                                   values=["test_accuracy", "bad_answers", "flagged_annotators"], aggfunc="mean")
    per_round.to_csv(args.out / "goes_bad_per_round.csv", float_format="%.4f")
    stopped = _rounds_to_stop(curves[curves["strategy"] == "with routing.min_quality"], turn)
    after = curves[curves["round"] >= turn].groupby("strategy")
    print(per_round.round(3).to_string())
    print(f"the bad annotator (random answers from round {turn}) stopped being asked within: {stopped}")
    print(f"bad answers collected from round {turn} on, per seed:",
          {name: rows.groupby("seed")["bad_answers"].sum().tolist() for name, rows in after})
    for metric in ("test_accuracy", "consensus_accuracy"):
        print(f"mean {metric} from round {turn} on, per seed:",
              {name: rows.groupby("seed")[metric].mean().round(4).tolist() for name, rows in after},
              "; over seeds:", after[metric].mean().round(4).to_dict())
    figure = report.plot(curves, title=f"{args.data}: an annotator turns to random answers at round {turn}",
                         metrics=("accuracy", "consensus_accuracy"))
    figure.savefig(args.out / "goes_bad.png", dpi=120)


def _goes_bad_data(args) -> tuple[list[str], list[str]]:
    """The simulate flags of the data, and of the annotator who goes bad.

    ``politeness``: the tutorial's files; the annotator holding the most answers turns.
    ``demo``: crowdloop's generated support tickets (4 classes, 12 annotators of known accuracy
    0.96 to 0.36, 5 answers per ticket), written under --out at run time; by default the annotator
    routing asks most turns (:data:`DEMO_BAD`: a trusted annotator who burns out)."""
    if args.data == "politeness":
        return [str(DATASETS / "politeness"), "--format", "tutorial"], (
            ["--bad-annotator", args.bad_annotator] if args.bad_annotator else [])
    bad = args.bad_annotator or DEMO_BAD
    print(f"{bad} goes bad")
    return demo_args(args.out / "demo_data"), ["--bad-annotator", bad]


def _rounds_to_stop(curves: pd.DataFrame, turn: int) -> dict:
    """Per seed: rounds from the turn until the bad annotator answers nothing in every later round."""
    out = {}
    for seed, rows in curves.groupby("seed"):
        answering = rows[(rows["round"] >= turn) & (rows["bad_answers"] > 0)]["round"]
        last = int(answering.max()) if len(answering) else turn - 1
        out[int(seed)] = "never" if last == rows["round"].max() else last - turn + 1
    return out


def _at_rounds(curves: pd.DataFrame, metrics) -> pd.DataFrame:
    """mean ± std over seeds per arm at :data:`AT_ROUNDS` and over every round."""
    columns = {}
    for metric in metrics:
        by_seed = curves.pivot_table(index=["strategy", "seed"], columns="round", values=metric)
        for at in [r for r in AT_ROUNDS if r in by_seed.columns]:
            columns[(metric, f"round {at}")] = by_seed[at].groupby("strategy").agg(_cell)
        columns[(metric, "mean over rounds")] = by_seed.mean(axis=1).groupby("strategy").agg(_cell)
    return pd.DataFrame(columns)


def _cell(values: pd.Series) -> str:
    return f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1 else f"{values.mean():.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=["one-shot", "bake-off", "goes-bad"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--methods", default=",".join(BAKE_OFF))
    parser.add_argument("--goes-bad", type=int, default=13)
    parser.add_argument("--min-quality", type=float, default=0.5)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--data", choices=["demo", "politeness"], default="demo")
    parser.add_argument("--answered-by", choices=["routed", "tutorial"], default="routed")
    parser.add_argument("--bad-annotator", help="who goes bad (demo default: DEMO_BAD; politeness: the busiest)")
    parser.add_argument("--sims", type=Path, nargs="*", help="summarise these simulation folders instead of running")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "consensus")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    {"one-shot": one_shot, "bake-off": bake_off, "goes-bad": goes_bad}[args.part](args)


if __name__ == "__main__":
    main()
