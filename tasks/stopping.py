"""When to stop a campaign: learning has plateaued, or the budget is spent.

Pure functions of the rounds' metrics (the dicts each round writes to
metrics.json). The plateau test compares consecutive rounds: a round is
*stable* when the model's score and mean consensus quality each moved by less
than ``epsilon`` since the round before; the rule fires after ``rounds`` stable
rounds in a row. The score is ``stopping.metric`` (accuracy, macro_f1 or
balanced_accuracy) on the gold test split where the campaign has one, else the
same metric out of sample against the consensus.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from crowdloop.tasks.wording import count

QUALITY_KEY = "mean_consensus_quality"


def score_keys(metric: str) -> tuple[str, str]:
    """The metrics.json keys the rule reads for ``metric``: gold test first, out of sample else."""
    return f"test_{metric}", f"oos_{metric}"


@dataclass(frozen=True)
class Spend:
    """What a campaign has used and may use: annotations and money (limits None = none)."""

    annotations: int
    money: float
    annotation_budget: int | None = None
    money_budget: float | None = None

    @property
    def annotations_left(self) -> int | None:
        return None if self.annotation_budget is None else max(0, self.annotation_budget - self.annotations)

    @property
    def money_left(self) -> float | None:
        return None if self.money_budget is None else max(0.0, self.money_budget - self.money)

    def batch_limit(self, batch_size: int) -> int:
        """How many requests a batch may make: ``batch_size``, or fewer when the annotation budget ends."""
        return batch_size if self.annotations_left is None else min(batch_size, self.annotations_left)

    @property
    def spent(self) -> bool:
        return self.annotations_left == 0 or (self.money_left is not None and self.money_left <= 0)


@dataclass(frozen=True)
class StopDecision:
    """``stop``: whether to stop; ``reason``: one sentence; ``stable_rounds``: the current plateau length."""

    stop: bool
    reason: str
    stable_rounds: int


def spending(annotations, *, costs: dict, default_cost: float, annotation_budget: int | None = None,
             money_budget: float | None = None, extra: float = 0.0, extra_annotations: int = 0) -> Spend:
    """:class:`Spend` of the stored ``annotations`` (column annotator_id), each at its annotator's cost.

    ``extra`` / ``extra_annotations``: a batch asked for but not answered yet, counted as spent.
    """
    money = float(annotations["annotator_id"].map(lambda a: costs.get(a, default_cost)).sum())
    return Spend(annotations=len(annotations) + extra_annotations, money=money + extra,
                 annotation_budget=annotation_budget, money_budget=money_budget)


def spend_so_far(annotations, budget, *, batch=None) -> Spend:
    """:func:`spending` under the ``budget`` section of params.yaml (config.BudgetConfig).

    ``batch`` (column cost): a batch asked for but not answered yet, counted as spent.
    """
    extra = (0.0, 0) if batch is None else (float(batch["cost"].sum()), len(batch))
    return spending(annotations, costs=budget.annotator_costs, default_cost=budget.cost_per_annotation,
                    annotation_budget=budget.annotations, money_budget=budget.money,
                    extra=extra[0], extra_annotations=extra[1])


def stop_metrics(history: Sequence[dict], spend: Spend, rule) -> dict:
    """:func:`decide` under the ``stopping`` section (config.StoppingConfig), as round metrics."""
    decision = decide(history, spend, epsilon=rule.epsilon, rounds=rule.rounds, metric=rule.metric)
    return {"stop": int(decision.stop), "stable_rounds": decision.stable_rounds, "stop_reason": decision.reason,
            "money_spent": spend.money}


def redecide(history: Sequence[dict], budget, rule) -> dict | None:
    """:func:`stop_metrics` of the last round of ``history`` again, under ``budget`` and ``rule`` (the
    budget and stopping sections of params.yaml as they are now) with the spend that round counted: its
    stored annotations, its batch and their cost. None when that round recorded no spend."""
    last = history[-1]
    if not all(_number(last.get(k)) for k in ("annotations", "batch_size", "money_spent")):
        return None
    spend = Spend(annotations=int(last["annotations"]) + int(last["batch_size"]), money=float(last["money_spent"]),
                  annotation_budget=budget.annotations, money_budget=budget.money)
    return stop_metrics(history, spend, rule)


def stable_rounds(history: Sequence[dict], *, epsilon: float, metric: str) -> int:
    """How many of the last rounds in a row changed ``metric`` and consensus quality by < ``epsilon``.

    Parameters
    ----------
    history : one metrics dict per round, oldest first.
    """
    count = 0
    for before, after in zip(reversed(history[:-1]), reversed(history[1:])):
        key = _score_key(before, after, metric)
        if key is None or not (_number(before.get(QUALITY_KEY)) and _number(after.get(QUALITY_KEY))):
            break
        if not all(abs(after[k] - before[k]) < epsilon for k in (key, QUALITY_KEY)):
            break
        count += 1
    return count


def decide(history: Sequence[dict], spend: Spend, *, epsilon: float, rounds: int,
           metric: str) -> StopDecision:
    """Stop when the budget is spent, or after ``rounds`` stable rounds in a row (on ``metric``)."""
    stable = stable_rounds(history, epsilon=epsilon, metric=metric)
    if spend.spent:
        what = "annotation" if spend.annotations_left == 0 else "money"
        return StopDecision(True, f"the {what} budget is spent", stable)
    if stable >= rounds:
        return StopDecision(True, f"{metric.replace('_', '-')} and consensus quality changed by less than "
                              f"{epsilon:g} for {count(stable, 'round')}", stable)
    return StopDecision(False, f"{stable} of {rounds} stable rounds", stable)


def _score_key(before: dict, after: dict, metric: str) -> str | None:
    for key in score_keys(metric):
        if _number(before.get(key)) and _number(after.get(key)):
            return key
    return None


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)
