"""Learning curves of a simulation: the tidy table, its summary, comparisons and figures (pure).

Every function takes the ``metric`` it reads: ``accuracy``, ``macro_f1`` or
``balanced_accuracy`` of the model on the gold test split, or ``consensus_accuracy``
(consensus labels against the dataset's gold or majority). :data:`DEFAULT_METRIC`
is what annotations-to-target, ROI and the comparisons use unless told otherwise:
macro-F1, because accuracy rewards always answering the majority class on
imbalanced data.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

CURVE_COLUMNS = ("strategy", "seed", "round", "annotations", "test_accuracy", "test_macro_f1",
                 "test_balanced_accuracy", "consensus_accuracy", "cost")
METRICS = {"accuracy": "test_accuracy", "macro_f1": "test_macro_f1", "balanced_accuracy": "test_balanced_accuracy",
           "consensus_accuracy": "consensus_accuracy"}
MODEL_METRICS = ("accuracy", "macro_f1", "balanced_accuracy")  # shown side by side in every summary
DEFAULT_METRIC = "macro_f1"


def column(metric: str) -> str:
    """The curves column of ``metric``; a clear error for an unknown one."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    return METRICS[metric]


def mean_curves(curves: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Per strategy and round: mean annotations, and mean and std over seeds of ``metric``
    (columns ``value``, ``value_std``), with ``cost`` when the curves have it."""
    grouped = curves.groupby(["strategy", "round"])
    name = column(metric)
    columns = dict(annotations=("annotations", "mean"), value=(name, "mean"), value_std=(name, "std"),
                   seeds=("seed", "nunique"))
    if "cost" in curves:
        columns["cost"] = ("cost", "mean")
    return grouped.agg(**columns).reset_index()


def annotations_to_reach(curves: pd.DataFrame, target: float, metric: str = DEFAULT_METRIC) -> pd.Series:
    """Per strategy: mean annotations at the first round whose mean ``metric`` ≥ ``target`` (NaN if never)."""
    out = {}
    for strategy, rows in mean_curves(curves, metric).groupby("strategy"):
        hit = rows[rows["value"] >= target]
        out[strategy] = float(hit["annotations"].iloc[0]) if len(hit) else float("nan")
    return pd.Series(out, name=f"annotations_to_{target:g}")


def error_ratio(curves: pd.DataFrame, strategy: str, baseline: str, *, rounds: tuple[int, int],
                metric: str = DEFAULT_METRIC) -> float:
    """Mean over rounds ``rounds[0]..rounds[1]`` of (1 - m[strategy]) / (1 - m[baseline])."""
    means = mean_curves(curves, metric).pivot(index="round", columns="strategy", values="value")
    window = means.loc[rounds[0]:rounds[1]]
    return float(((1 - window[strategy]) / (1 - window[baseline])).mean())


def comparison(curves: pd.DataFrame, strategy: str, baseline: str, *, metric: str = DEFAULT_METRIC,
               rounds: tuple[int, int] | None = None) -> dict:
    """How ``strategy`` did against ``baseline`` on ``metric``, seeds paired.

    Returns ``mean_difference`` (strategy − baseline, mean over rounds and seeds) with
    ``mean_difference_se`` (over seeds of each seed's mean over rounds), ``worst_round``
    and its difference ``worst_difference`` with ``worst_difference_se`` (over seeds),
    ``rounds_won`` of ``rounds_compared`` (mean over seeds higher), ``rounds_behind`` (rounds
    whose mean difference is below minus twice its standard error over seeds),
    ``rounds_behind_holm`` (the same question asked once for all rounds: :func:`behind_holm`),
    ``error_ratio`` (mean over rounds of the ratio of mean errors) and the final round's means.
    ``rounds``: the window (default every round both have).
    """
    name = column(metric)
    table = curves.pivot_table(index=["seed", "round"], columns="strategy", values=name)
    table = table[[strategy, baseline]].dropna()
    if rounds is not None:
        table = table[table.index.get_level_values("round").to_series().between(*rounds).to_numpy()]
    difference = (table[strategy] - table[baseline]).unstack("round")  # seeds × rounds
    n_seeds = len(difference)
    se = (lambda x: float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan"))
    per_round = difference.mean(axis=0)
    per_round_se = difference.std(axis=0, ddof=1) / np.sqrt(n_seeds)
    worst = per_round.idxmin()
    means = table.groupby(level="round").mean()
    last = means.index.max()
    return {"metric": metric, "seeds": n_seeds, "mean_difference": float(difference.to_numpy().mean()),
            "mean_difference_se": se(difference.mean(axis=1).to_numpy()),
            "worst_round": int(worst), "worst_difference": float(per_round[worst]),
            "worst_difference_se": float(per_round_se[worst]),
            "rounds_won": int((per_round > 0).sum()), "rounds_compared": int(len(per_round)),
            "rounds_behind": int((per_round < -2 * per_round_se).sum()),
            "rounds_behind_holm": behind_holm(per_round.to_numpy(), per_round_se.to_numpy(), n_seeds),
            "error_ratio": float(((1 - means[strategy]) / (1 - means[baseline])).mean()),
            f"final_{strategy}": float(means.loc[last, strategy]),
            f"final_{baseline}": float(means.loc[last, baseline])}


def behind_holm(difference: np.ndarray, se: np.ndarray, n_seeds: int, *, z: float = 2.0) -> int:
    """How many rounds are behind once every round is read at once: each round's one-sided t-test
    of its mean ``difference`` over its standard error ``se`` (``n_seeds`` − 1 degrees of freedom),
    Holm's step-down over the rounds at the level of one normal round ``z`` standard errors down
    (P(Z < −2) ≈ 0.023). ``rounds_behind`` asks it of each round alone, so some 20 rounds of a
    strategy no worse than the baseline give it a round or two by chance."""
    from scipy import stats

    if n_seeds < 2 or not len(difference):
        return 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.nan_to_num(difference / se, nan=0.0)  # 0/0: every seed equal to the baseline there
    p = np.sort(stats.t.cdf(t, df=n_seeds - 1))
    rejected = p <= stats.norm.cdf(-z) / (len(p) - np.arange(len(p)))
    return int(len(p) if rejected.all() else np.argmin(rejected))


def roi(curves: pd.DataFrame, *, baseline: str | None = "random", metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Annotation ROI per strategy on ``metric``, from its first to its last round (means over seeds).

    Columns: ``gain/100 ann`` (``metric`` gained per 100 annotations: 0.01 is one
    percentage point), ``gain/100 cost`` (per 100 units of cost, when curves have a
    ``cost`` column) and, when ``baseline`` is among the strategies, each one minus the
    baseline's (``... vs <baseline>``).
    """
    rows = {}
    for strategy, part in mean_curves(curves, metric).groupby("strategy"):
        part = part.sort_values("round")
        first, last = part.iloc[0], part.iloc[-1]
        gain = last["value"] - first["value"]
        row = {"gain/100 ann": _ratio(gain, last["annotations"] - first["annotations"]) * 100}
        if "cost" in part:
            row["gain/100 cost"] = _ratio(gain, last["cost"] - first["cost"]) * 100
        rows[strategy] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if baseline in table.index:
        for name in list(table.columns):
            table[f"{name} vs {baseline}"] = table[name] - table.loc[baseline, name]
    return table


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def _mean_std(mean: float, std: float) -> str:
    """``0.750 ± 0.012``; the mean alone from one seed (no spread to show); ``n/a`` where the round
    has no value (nothing labeled yet: no model to score)."""
    if np.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def summary(curves: pd.DataFrame, *, at_rounds: Sequence[int], target: float, baseline: str | None = None,
            metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """One row per strategy: mean ± std ``metric`` at ``at_rounds``; the last round's accuracy,
    macro-F1 and balanced accuracy side by side; the share of rounds whose model carried signal (and,
    where it differs, signal in its ranking only: :mod:`crowdloop.tasks.signal`);
    annotations to reach ``target`` on ``metric``; with ``baseline``, the annotation ROI (:func:`roi`)."""
    short = {"accuracy": "acc", "macro_f1": "F1", "balanced_accuracy": "bal", "consensus_accuracy": "cons"}
    means = mean_curves(curves, metric)
    rows = {}
    for strategy, part in means.groupby("strategy"):
        part = part.set_index("round")
        rows[strategy] = {f"{short[metric]}@{r}": _mean_std(part.loc[r, "value"], part.loc[r, "value_std"])
                          for r in at_rounds if r in part.index}
    table = pd.DataFrame.from_dict(rows, orient="index")
    last = int(curves["round"].max())
    for other in MODEL_METRICS:
        if other != metric and column(other) in curves:
            values = mean_curves(curves, other).query("round == @last").set_index("strategy")["value"]
            table[f"{short[other]}@{last}"] = values.reindex(table.index).map("{:.3f}".format)
    shares = {label: curves.groupby("strategy")[name].mean().reindex(table.index).map("{:.0%}".format)
              for name, label in (("signal", "model signal"), ("ranking_signal", "ranking signal"))
              if name in curves and curves[name].notna().any()}  # the share of rounds the model beat chance
    if "model signal" in shares:
        table["model signal"] = shares["model signal"]
    if "ranking signal" in shares and not shares["ranking signal"].equals(shares.get("model signal")):
        table["ranking signal"] = shares["ranking signal"]  # where a class-weighted model ranked without signal
    reach = annotations_to_reach(curves, target, metric)
    table[f"annotations to {short[metric]} {target:g}"] = [
        "never" if np.isnan(reach[s]) else f"{reach[s]:.0f}" for s in table.index]
    if baseline is not None:
        table = table.join(roi(curves, baseline=baseline, metric=metric).round(4))
    return table


def summary_text(table: pd.DataFrame, *, metric: str, target: float) -> str:
    """A simulation's summary.txt: :func:`summary`'s ``table`` under a line on the metric it reads, and
    what its ``ranking signal`` column means where it has one."""
    text = (f"metric: {metric} (the summary's annotations to {target:g} and ROI; accuracy, macro-F1 and "
            f"balanced accuracy are all in curves.csv)\n{table.to_string()}")
    if "ranking signal" in table:
        text += ("\nranking signal: rounds whose class-weighted model told the classes apart while its probabilities "
                 "as fitted lost to the class prior (auto counted them as no signal; README, \"Will it save "
                 "annotations on my data?\")")
    return text


def plot(curves: pd.DataFrame, *, title: str, reference: pd.DataFrame | None = None,
         metrics: Sequence[str] = MODEL_METRICS):
    """One panel per metric: mean ± std bands per strategy against annotations. ``reference``
    (strategy, annotations, accuracy) is drawn dashed on the accuracy panel. Returns a Figure."""
    metrics = [m for m in metrics if column(m) in curves and curves[column(m)].notna().any()]
    n_strategies = curves["strategy"].nunique()
    many = n_strategies > 4
    # Beyond 4 strategies: 20 distinct colours, thin bands and the legend beside the axes,
    # so that a figure of every strategy stays readable.
    figure, panels = _axes(figsize=(4.2 * len(metrics) + (2.5 if many else 0), 4.2), panels=len(metrics))
    colours = _colours(n_strategies)
    for axes, metric in zip(panels, metrics):
        means = mean_curves(curves, metric)
        for colour, (strategy, part) in zip(colours, means.groupby("strategy")):
            axes.plot(part["annotations"], part["value"], label=strategy, color=colour)
            std = np.nan_to_num(part["value_std"].to_numpy())
            axes.fill_between(part["annotations"], part["value"] - std, part["value"] + std,
                              alpha=0.07 if many else 0.2, color=colour)
        if reference is not None and metric == "accuracy":
            for strategy, part in reference.groupby("strategy"):
                axes.plot(part["annotations"], part["accuracy"], linestyle="--", label=f"{strategy} (published)")
        _label(axes, xlabel="annotations collected", ylabel=metric.replace("_", " "))
    panels[0].set_title(title, loc="left")
    _legend(panels[-1], outside=many)
    figure.tight_layout()
    return figure


def plot_campaign(rounds: pd.DataFrame, *, title: str):
    """A campaign's learning curve: test accuracy, macro-F1 and balanced accuracy against annotations.

    ``rounds`` has one row per round with ``round``, ``annotations`` and, for rounds
    that trained a model, ``test_accuracy`` and optionally ``test_macro_f1`` and
    ``test_balanced_accuracy`` (a cold-start round has none: it is left out). Returns a Figure.
    """
    figure, (axes,) = _axes(figsize=(6, 4))
    scored = rounds.dropna(subset=["test_accuracy"]) if "test_accuracy" in rounds else rounds.iloc[:0]
    for name, label in (("test_accuracy", "test accuracy"), ("test_macro_f1", "macro-F1"),
                        ("test_balanced_accuracy", "balanced accuracy")):
        if name in scored:
            axes.plot(scored["annotations"], scored[name], marker="o", label=label)
    for _, row in scored.iterrows():
        axes.annotate(f"{int(row['round'])}", (row["annotations"], row["test_accuracy"]),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    _label(axes, xlabel="annotations collected (labels: round)", ylabel="held-out test score")
    axes.set_title(title)
    _legend(axes, outside=False)
    figure.tight_layout()
    return figure


def _axes(*, figsize: tuple[float, float], panels: int = 1):
    # A Figure without pyplot: no display backend, and no global list of open figures
    # for a long-running `crowdloop deploy` to grow.
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, list(np.atleast_1d(figure.subplots(1, panels)))


def _colours(n: int) -> list:
    """``n`` distinct colours: matplotlib's default cycle up to 10, tab20 beyond."""
    from matplotlib import colormaps

    table = colormaps["tab10" if n <= 10 else "tab20"]
    return [table(i) for i in range(n)]


def _label(axes, *, xlabel: str, ylabel: str) -> None:
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)


def _legend(axes, *, outside: bool) -> None:
    if not axes.get_legend_handles_labels()[0]:  # a cold-start campaign has no curve yet
        return
    if outside:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    else:
        axes.legend(fontsize=8)
