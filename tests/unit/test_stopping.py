"""The stopping rule: fires on a plateau of k rounds within epsilon, or when the budget is spent."""

from __future__ import annotations

import pandas as pd

from crowdloop.tasks.config import BudgetConfig, StoppingConfig
from crowdloop.tasks.stopping import Spend, decide, redecide, spending, stable_rounds

FREE = Spend(annotations=100, money=100.0)


def _history(accuracies, qualities, key="test_accuracy"):
    return [{key: a, "mean_consensus_quality": q} for a, q in zip(accuracies, qualities)]


def test_the_rule_fires_after_k_rounds_on_a_plateau_and_not_before():
    # climbing, then flat within 0.002 for rounds 4..7
    accuracy = [0.60, 0.70, 0.78, 0.800, 0.801, 0.802, 0.801]
    quality = [0.50, 0.60, 0.70, 0.750, 0.751, 0.751, 0.752]
    for n, expected in [(4, 0), (5, 1), (6, 2), (7, 3)]:
        assert stable_rounds(_history(accuracy[:n], quality[:n]), epsilon=0.005, metric="accuracy") == expected
    assert not decide(_history(accuracy[:6], quality[:6]), FREE, epsilon=0.005, rounds=3, metric="accuracy").stop
    decision = decide(_history(accuracy, quality), FREE, epsilon=0.005, rounds=3, metric="accuracy")
    assert decision.stop and decision.stable_rounds == 3
    assert decision.reason == "accuracy and consensus quality changed by less than 0.005 for 3 rounds"


def test_moving_consensus_quality_alone_keeps_the_campaign_going():
    accuracy = [0.8] * 6
    quality = [0.50, 0.55, 0.60, 0.65, 0.70, 0.75]
    assert not decide(_history(accuracy, quality), FREE, epsilon=0.005, rounds=3, metric="accuracy").stop


def test_out_of_sample_accuracy_is_used_without_a_test_split():
    history = _history([0.9, 0.9, 0.9, 0.9], [0.8, 0.8, 0.8, 0.8], key="oos_accuracy")
    assert decide(history, FREE, epsilon=0.01, rounds=3, metric="accuracy").stop
    assert stable_rounds([{"mean_consensus_quality": 0.8}] * 4, epsilon=0.01, metric="accuracy") == 0  # no score
    f1 = _history([0.6, 0.6, 0.6, 0.6], [0.8] * 4, key="test_macro_f1")
    assert decide(f1, FREE, epsilon=0.01, rounds=3, metric="macro_f1").stop
    assert not decide(f1, FREE, epsilon=0.01, rounds=3, metric="accuracy").stop  # not the metric it reads


def test_a_spent_budget_stops_at_once():
    history = _history([0.5, 0.7], [0.5, 0.6])
    assert decide(history, Spend(50, 0.0, annotation_budget=50), epsilon=0.005, rounds=3, metric="accuracy").reason == \
        "the annotation budget is spent"
    money = decide(history, Spend(10, 30.0, money_budget=25.0), epsilon=0.005, rounds=3, metric="accuracy")
    assert money.stop and "money" in money.reason
    assert not decide(history, Spend(10, 20.0, annotation_budget=50, money_budget=25.0),
                      epsilon=0.005, rounds=3, metric="accuracy").stop


def test_spending_prices_each_annotation_at_its_annotators_cost():
    annotations = pd.DataFrame({"annotator_id": ["ann", "bob", "bob", "cid"]})
    spend = spending(annotations, costs={"ann": 3.0}, default_cost=0.5, money_budget=5.0,
                     extra=1.0, extra_annotations=2)
    assert spend.annotations == 6 and spend.money == 3.0 + 3 * 0.5 + 1.0
    assert spend.money_left == 0.0 and spend.spent


def test_a_round_is_judged_again_with_the_spend_it_recorded_under_a_budget_or_rule_changed_since():
    history = _history([0.5, 0.7], [0.5, 0.6])
    history[-1].update({"annotations": 40, "batch_size": 10, "money_spent": 50.0})  # the batch counts as spent
    rule = StoppingConfig(metric="accuracy", epsilon=0.005, rounds=3)

    def budget(annotations=None, money=None):
        return BudgetConfig(annotations=annotations, money=money, cost_per_annotation=1.0, annotator_costs={})

    assert redecide(history, budget(50), rule)["stop_reason"] == "the annotation budget is spent"
    assert redecide(history, budget(money=50.0), rule)["stop_reason"] == "the money budget is spent"
    raised = redecide(history, budget(60, 60.0), rule)
    assert raised["stop"] == 0 and raised["stop_reason"] == "0 of 3 stable rounds" and raised["money_spent"] == 50.0
    assert redecide(history, budget(60), StoppingConfig(metric="accuracy", epsilon=0.5, rounds=1))["stop"] == 1
    assert redecide(_history([0.5], [0.5]), budget(1), rule) is None  # a round that recorded no spend
