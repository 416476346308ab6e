"""Learning curves of a simulation: the tidy table, its summary and its figure (pure)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

CURVE_COLUMNS = ("strategy", "seed", "round", "annotations", "test_accuracy", "test_macro_f1",
                 "consensus_accuracy", "cost")


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and round: mean and std over seeds of annotations and accuracy."""
    grouped = curves.groupby(["strategy", "round"])
    columns = dict(annotations=("annotations", "mean"), accuracy=("test_accuracy", "mean"),
                   accuracy_std=("test_accuracy", "std"), seeds=("seed", "nunique"))
    if "cost" in curves:
        columns["cost"] = ("cost", "mean")
    return grouped.agg(**columns).reset_index()


def annotations_to_reach(curves: pd.DataFrame, target: float) -> pd.Series:
    """Per strategy: mean annotations at the first round whose mean accuracy ≥ ``target`` (NaN if never)."""
    out = {}
    for strategy, rows in mean_curves(curves).groupby("strategy"):
        hit = rows[rows["accuracy"] >= target]
        out[strategy] = float(hit["annotations"].iloc[0]) if len(hit) else float("nan")
    return pd.Series(out, name=f"annotations_to_{target:g}")


def error_ratio(curves: pd.DataFrame, strategy: str, baseline: str, *, rounds: tuple[int, int]) -> float:
    """Mean over rounds ``rounds[0]..rounds[1]`` of (1 - acc[strategy]) / (1 - acc[baseline])."""
    means = mean_curves(curves).pivot(index="round", columns="strategy", values="accuracy")
    window = means.loc[rounds[0]:rounds[1]]
    return float(((1 - window[strategy]) / (1 - window[baseline])).mean())


def roi(curves: pd.DataFrame, *, baseline: str | None = "random") -> pd.DataFrame:
    """Annotation ROI per strategy, from its first to its last round (means over seeds).

    Columns: ``acc/100 ann`` (accuracy gained per 100 annotations, in accuracy
    units: 0.01 is one percentage point), ``acc/100 cost`` (gained per 100 units of
    cost, when curves have a ``cost`` column) and, when ``baseline`` is among the strategies, each one
    minus the baseline's (``... vs <baseline>``).
    """
    rows = {}
    for strategy, part in mean_curves(curves).groupby("strategy"):
        part = part.sort_values("round")
        first, last = part.iloc[0], part.iloc[-1]
        gain = last["accuracy"] - first["accuracy"]
        row = {"acc/100 ann": _ratio(gain, last["annotations"] - first["annotations"]) * 100}
        if "cost" in part:
            row["acc/100 cost"] = _ratio(gain, last["cost"] - first["cost"]) * 100
        rows[strategy] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if baseline in table.index:
        for column in list(table.columns):
            table[f"{column} vs {baseline}"] = table[column] - table.loc[baseline, column]
    return table


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def summary(curves: pd.DataFrame, *, at_rounds: Sequence[int], target: float,
            baseline: str | None = None) -> pd.DataFrame:
    """One row per strategy: mean ± std accuracy at ``at_rounds``, annotations to reach ``target``
    and, with ``baseline``, the annotation ROI (:func:`roi`)."""
    means = mean_curves(curves)
    rows = {}
    for strategy, part in means.groupby("strategy"):
        part = part.set_index("round")
        row = {f"acc@{r}": f"{part.loc[r, 'accuracy']:.3f} ± {np.nan_to_num(part.loc[r, 'accuracy_std']):.3f}"
               for r in at_rounds if r in part.index}
        rows[strategy] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    reach = annotations_to_reach(curves, target)
    table[f"annotations to {target:.0%}"] = [
        "never" if np.isnan(reach[s]) else f"{reach[s]:.0f}" for s in table.index]
    if baseline is not None:
        table = table.join(roi(curves, baseline=baseline).round(4))
    return table


def plot(curves: pd.DataFrame, *, title: str, reference: pd.DataFrame | None = None):
    """Mean ± std bands per strategy against annotations; ``reference`` (strategy, annotations,
    accuracy) is drawn dashed beside them. Returns a matplotlib Figure."""
    means = mean_curves(curves)
    many = means["strategy"].nunique() > 4
    # Beyond 4 strategies: 20 distinct colours, thin bands and the legend beside the axes,
    # so that a figure of every strategy stays readable.
    figure, axes = _axes(figsize=(9.5, 5) if many else (7, 4.5))
    colours = _colours(means["strategy"].nunique())
    for colour, (strategy, part) in zip(colours, means.groupby("strategy")):
        axes.plot(part["annotations"], part["accuracy"], label=strategy, color=colour)
        std = np.nan_to_num(part["accuracy_std"].to_numpy())
        axes.fill_between(part["annotations"], part["accuracy"] - std, part["accuracy"] + std,
                          alpha=0.07 if many else 0.2, color=colour)
    if reference is not None:
        for strategy, part in reference.groupby("strategy"):
            axes.plot(part["annotations"], part["accuracy"], linestyle="--", label=f"{strategy} (published)")
    return _finish(figure, axes, xlabel="annotations collected", ylabel="test accuracy", title=title,
                   legend_outside=many)


def plot_campaign(rounds: pd.DataFrame, *, title: str):
    """A campaign's learning curve: test accuracy (and macro-F1) against annotations.

    ``rounds`` has one row per round with ``round``, ``annotations`` and, for rounds
    that trained a model, ``test_accuracy`` and optionally ``test_macro_f1`` (a
    cold-start round has neither: it is left out). Returns a matplotlib Figure.
    """
    figure, axes = _axes(figsize=(6, 4))
    scored = rounds.dropna(subset=["test_accuracy"]) if "test_accuracy" in rounds else rounds.iloc[:0]
    for column, label in (("test_accuracy", "test accuracy"), ("test_macro_f1", "macro-F1")):
        if column in scored:
            axes.plot(scored["annotations"], scored[column], marker="o", label=label)
    for _, row in scored.iterrows():
        axes.annotate(f"{int(row['round'])}", (row["annotations"], row["test_accuracy"]),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    return _finish(figure, axes, xlabel="annotations collected (labels: round)", ylabel="held-out test score",
                   title=title)


def _axes(*, figsize: tuple[float, float]):
    # A Figure without pyplot: no display backend, and no global list of open figures
    # for a long-running `crowdloop deploy` to grow.
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots()


def _colours(n: int) -> list:
    """``n`` distinct colours: matplotlib's default cycle up to 10, tab20 beyond."""
    from matplotlib import colormaps

    table = colormaps["tab10" if n <= 10 else "tab20"]
    return [table(i) for i in range(n)]


def _finish(figure, axes, *, xlabel: str, ylabel: str, title: str, legend_outside: bool = False):
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0] and legend_outside:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    elif axes.get_legend_handles_labels()[0]:  # a cold-start campaign has no curve yet
        axes.legend()
    figure.tight_layout()
    return figure
