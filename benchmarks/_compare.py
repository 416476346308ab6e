"""Shared by the benchmark scripts: the datasets and their flags, running `crowdloop simulate`, headlines."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import pandas as pd

from crowdloop import cli, signals
from crowdloop.tasks import report

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
# One embeddings cache for the scripts that simulate the same texts many times (choices, consensus):
# each text is embedded once across them (`crowdloop simulate --embedding-cache`).
SHARED_CACHE = ["--embedding-cache", str(ROOT / "benchmarks" / "out" / ".embeddings")]

# dataset -> (the `crowdloop simulate` arguments for it, the target its summary counts annotations to)
SOURCES = {
    "politeness": (lambda d: [str(d), "--format", "tutorial", "--preset", "tutorial"], 0.9),
    "rte": (lambda d: [str(d / "rte.standardized.tsv"), "--format", "long", "--examples", str(d / "rte1.tsv"),
                       "--example-col", "orig_id", "--annotator-col", "!amt_worker_ids", "--label-col", "response",
                       "--gold-col", "gold", "--examples-id-col", "id", "--text-cols", "text,hypothesis",
                       "--preset", "rte"], 0.6),
    "hs_brexit": (lambda d: [str(d), "--format", "lewidi", "--preset", "rte"], 0.6),
}


def demo_args(folder: Path) -> list[str]:
    """crowdloop's generated support tickets (4 classes, 12 annotators of known accuracy 0.96 to 0.36,
    5 answers per ticket, 1,600 tickets, no test split), written to ``folder`` at run time: the
    simulate arguments that read them. A noisy crowd, where the model has signal."""
    from crowdloop.tasks import demo

    generated = demo.make_demo(seed=0, n_pool=1600, n_test=40, n_initial=0)
    folder.mkdir(parents=True, exist_ok=True)
    pool = generated.examples[generated.examples["split"] == "pool"]
    pool.loc[:, ["example_id", "text", "gold"]].to_csv(folder / "examples.csv", index=False)
    generated.answers.to_csv(folder / "answers.csv", index=False)
    accuracy = ", ".join(f"{a} {q:.2f}" for a, q in sorted(generated.annotator_accuracy.items()))
    print(f"demo annotators' accuracy: {accuracy}")
    return [str(folder / "answers.csv"), "--format", "long", "--examples", str(folder / "examples.csv"),
            "--examples-gold-col", "gold"]


def crowdloop_command(argv: list[str]) -> int:
    """`crowdloop ARGV` in this process; returns its exit code. SIGTERM (a timeout, ``kill``) stops the
    script as it stops the command: the run unwinds and Prefect's temporary server goes with it."""
    _stop_on_sigterm()
    return cli.main(argv)


@functools.cache
def _stop_on_sigterm() -> None:
    signals.stop_on_sigterm()  # once per process: each call arms another watcher


def simulate(args: list[str]) -> float:
    """Run `crowdloop simulate ARGS`; returns wall seconds."""
    start = time.perf_counter()
    code = crowdloop_command(["simulate", *args])
    if code:
        raise SystemExit(f"crowdloop simulate failed with exit code {code}")
    return time.perf_counter() - start


def importable_by_workers() -> None:
    """Let the simulation's worker processes import the benchmark scripts (an arm given as
    ``module:function`` of one of them)."""
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)


def dataset_args(name: str) -> tuple[list[str], float]:
    """The simulate arguments and target of the dataset ``name`` (one of SOURCES)."""
    flags, target = SOURCES[name]
    return flags(DATASETS / name), target


def per_round(curves: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Mean ``metric`` per round and strategy, with mean annotations."""
    means = report.mean_curves(curves, metric)
    table = means.pivot(index="round", columns="strategy", values="value")
    table.insert(0, "annotations", means.groupby("round")["annotations"].mean())
    return table


COMPARED = ("accuracy", "macro_f1", "balanced_accuracy", "consensus_accuracy")


def comparison_rows(name: str, curves: pd.DataFrame, target: float, strategy: str, baseline: str) -> list[dict]:
    """``strategy`` against ``baseline`` on dataset ``name``, a row per metric of COMPARED that the curves
    hold: the columns of `benchmarks/all.py`'s table (its docstring says what each means)."""
    signal = curves[curves["strategy"] == strategy].groupby("round")["signal"].mean() > 0.5
    rows = []
    for metric in COMPARED:
        if curves[report.column(metric)].isna().all():
            continue
        result = report.comparison(curves, strategy, baseline, metric=metric)
        curve = report.mean_curves(curves, metric)
        means = curve.pivot(index="round", columns="strategy", values="value")
        stds = curve.pivot(index="round", columns="strategy", values="value_std")
        ahead = means[strategy] > means[baseline]
        with_signal = signal.reindex(means.index, fill_value=False)
        reach = report.annotations_to_reach(curves, target, metric)
        last = means.index.max()
        rows.append({
            "dataset": name, "metric": metric, "seeds": result["seeds"],
            "error ratio": round(result["error_ratio"], 3),
            "mean diff ± se": f"{result['mean_difference']:+.3f} ± {result['mean_difference_se']:.3f}",
            "worst round": f"{result['worst_round']}: {result['worst_difference']:+.3f} ± "
                           f"{result['worst_difference_se']:.3f}",
            "won": f"{result['rounds_won']}/{result['rounds_compared']}",
            "behind": result["rounds_behind"], "behind (Holm)": result["rounds_behind_holm"],
            "signal rounds": int(with_signal.sum()),
            "won (signal)": f"{int((ahead & with_signal).sum())}/{int(with_signal.sum())}",
            "to target": f"{target:g}: " + " / ".join("never" if v != v else f"{v:.0f}"
                                                       for v in (reach.get(strategy), reach.get(baseline))),
            "final": f"{means.loc[last, strategy]:.3f} ± {stds.loc[last, strategy]:.3f} / "
                     f"{means.loc[last, baseline]:.3f} ± {stds.loc[last, baseline]:.3f}",
            # machine-readable twins of the strings above
            "_mean_difference": result["mean_difference"], "_mean_difference_se": result["mean_difference_se"],
            "_worst_difference": result["worst_difference"], "_worst_difference_se": result["worst_difference_se"],
        })
    return rows


def rule_readings(curves: pd.DataFrame, name: str, group: int, pairs: dict[str, tuple[str, str]],
                  metrics: tuple[str, ...] = ("macro_f1", "consensus_accuracy")) -> list[dict]:
    """Each group of ``group`` consecutive seeds, each reading ``label: (first, second)`` of ``pairs``,
    each metric: whether "never worse than random" holds for first against second. ``holds``: the mean
    over rounds of first − second is not below 0 by more than one standard error (over seeds) and no
    round (``behind``) by more than two standard errors of its difference; ``holds (Holm)``: the same
    with the rounds read at once (``report.behind_holm``)."""
    seeds = sorted(curves["seed"].unique())
    rows = []
    for start in range(0, len(seeds) - group + 1, group):
        part = curves[curves["seed"].isin(seeds[start:start + group])]
        for label, (first, second) in pairs.items():
            for metric in metrics:
                result = report.comparison(part, first, second, metric=metric)
                mean, se = result["mean_difference"], result["mean_difference_se"]
                rows.append({"dataset": name, "seeds": f"{seeds[start]}-{seeds[start + group - 1]}",
                             "reading": label, "metric": metric,
                             "mean diff ± se": f"{mean:+.4f} ± {se:.4f}", "behind": result["rounds_behind"],
                             "behind (Holm)": result["rounds_behind_holm"],
                             "holds": bool(mean >= -se and result["rounds_behind"] == 0),
                             "holds (Holm)": bool(mean >= -se and result["rounds_behind_holm"] == 0)})
    return rows


def print_readings(table: pd.DataFrame, group: int) -> None:
    """The readings, then how many hold on every dataset and metric at once, by each rule."""
    print(table.to_string(index=False))
    for holds in ("holds", "holds (Holm)"):
        whole = table.groupby(["seeds", "reading"])[holds].all()
        print(f"{holds}: the rule holds on every dataset and metric in {int(whole.sum())} of {len(whole)} "
              f"readings of {group} seeds; cells failing: {int((~table[holds]).sum())} of {len(table)}")


def headline(curves: pd.DataFrame, *, target: float, window: tuple[int, int], metric: str = "accuracy",
             strategy: str = "auto", baseline: str = "random") -> str:
    reach = report.annotations_to_reach(curves, target, metric)
    ratio = report.error_ratio(curves, strategy, baseline, rounds=window, metric=metric)
    last = per_round(curves, metric).iloc[-1]
    lines = [f"{metric}: annotations to reach {target:g}: " + ", ".join(
        f"{k} {'never' if v != v else int(v)}" for k, v in reach.items()),
        f"{metric}: error ratio {strategy}/{baseline}, rounds {window[0]}-{window[1]}: {ratio:.3f}",
        f"{metric}: final round: {strategy} {last.get(strategy, float('nan')):.3f}, "
        f"{baseline} {last.get(baseline, float('nan')):.3f}"]
    return "\n".join(lines)
