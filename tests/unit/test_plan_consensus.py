"""A round's plan with every consensus method: ActiveLab scores, the model trains on the method's labels,
and an annotator flagged by routing.min_quality gets no request."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crowdloop.flows.plan import Stopwatch, plan_round
from crowdloop.tasks import config, round_data
from crowdloop.tasks.config_checks import CONSENSUS_METHODS
from crowdloop.tasks.train import Predictions

CLASSES = ("no", "yes")


def _data(n=30, seed=0):
    """n pool examples (the first 20 labeled by three good annotators and 'bad', who is always wrong), 5 test."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(2, size=n)
    ids = [f"e{i:02d}" for i in range(n)]
    examples = pd.DataFrame({"example_id": ids + [f"t{i}" for i in range(5)],
                             "text": [f"text {i}" for i in range(n + 5)], "split": ["pool"] * n + ["test"] * 5,
                             "gold": [CLASSES[t] for t in truth] + ["no"] * 5})
    rows = []
    for i in range(20):
        for name in ("g1", "g2", "g3"):
            rows.append((ids[i], name, CLASSES[truth[i] if rng.random() < 0.9 else 1 - truth[i]]))
        rows.append((ids[i], "bad", CLASSES[1 - truth[i]]))
    annotations = pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"])
    return round_data.build(examples, annotations, classes=CLASSES), truth


def _previous(data):
    """The last round's pool probabilities from a weak model (the uniform ones of a round that trained no
    model would keep CROWDLAB out: plan.trusted_previous)."""
    no = np.random.default_rng(1).uniform(0.3, 0.7, len(data.pool_ids))
    return pd.DataFrame({"no": no, "yes": 1 - no}, index=data.pool_ids)


class Trainer:
    """A stand-in model: 0.8 on the label it was trained on, 0.5 on everything else; records its labels."""

    def __init__(self):
        self.labels = None

    def __call__(self, training):
        self.labels = np.asarray(training.labels)
        labeled = np.full((len(self.labels), 2), 0.2)
        labeled[np.arange(len(self.labels)), self.labels] = 0.8
        unlabeled = np.full((len(training.texts_unlabeled), 2), 0.5)
        return Predictions(pred_probs=labeled, pred_probs_unlabeled=unlabeled,
                           fold_pred_probs_unlabeled=np.stack([unlabeled] * 3),
                           test_probs=np.full((len(training.texts_test), 2), 0.5), backend="stub",
                           folds=np.arange(len(self.labels)) % 3)


def _cfg(method, min_quality=None):
    cfg = config.load()
    return dataclasses.replace(
        cfg, classes=CLASSES, consensus=dataclasses.replace(cfg.consensus, method=method, require_signal=False),
        score=dataclasses.replace(cfg.score, strategy="activelab", cold_start=False),
        select=dataclasses.replace(cfg.select, batch_size=8),
        routing=dataclasses.replace(cfg.routing, min_quality=min_quality, min_labels=5))


@pytest.mark.parametrize("method", CONSENSUS_METHODS)
def test_activelab_plans_a_round_with_every_consensus_method(method):
    data, truth = _data()
    previous = _previous(data)
    trainer = Trainer()
    plan = plan_round(data, previous, _cfg(method), number=2, train=trainer, clock=Stopwatch())
    assert plan.agreed.method == method
    assert plan.strategy == "activelab"
    # the model trained on exactly this method's consensus labels
    assert (trainer.labels == round_data.consensus_labels(data, plan.agreed)).all()
    assert (trainer.labels == truth[:20]).mean() >= 0.75  # 2-2 ties (a good annotator errs) go either way
    assert len(plan.batch) == 8 and plan.scores.notna().all()
    assert {"quality_change", "recent_quality", "flagged"} <= set(plan.agreed.annotators.columns)


@pytest.mark.parametrize("method", ["majority", "crowdlab", "dawid_skene"])
def test_an_annotator_below_min_quality_is_flagged_and_asked_nothing(method):
    data, _ = _data()
    previous = _previous(data)
    free = plan_round(data, previous, _cfg(method), number=2, train=Trainer(), clock=Stopwatch())
    assert "bad" in set(free.batch["suggested_annotator"])  # routing spreads the load over everyone
    guarded = plan_round(data, previous, _cfg(method, min_quality=0.5), number=2, train=Trainer(),
                         clock=Stopwatch())
    flagged = guarded.agreed.annotators.set_index("annotator_id")["flagged"]
    assert flagged.to_dict() == {"bad": True, "g1": False, "g2": False, "g3": False}
    assert "bad" not in set(guarded.batch["suggested_annotator"])
    assert len(guarded.batch) == 8


@pytest.mark.parametrize("signal_strategy", ["activelab", "margin"])
def test_auto_scores_with_score_signal_strategy_while_the_model_has_signal(signal_strategy):
    data, _ = _data()
    cfg = _cfg("majority")
    cfg = dataclasses.replace(cfg, score=dataclasses.replace(cfg.score, strategy="auto",
                                                             signal_strategy=signal_strategy))
    plan = plan_round(data, None, cfg, number=2, train=Trainer(), clock=Stopwatch())
    assert plan.signal["signal"]  # the stand-in model predicts the consensus it was trained on
    assert plan.strategy == signal_strategy


@pytest.mark.parametrize("class_weight", ["balanced", "none"])
def test_the_signal_reads_the_log_loss_with_the_class_weights_undone_only_when_they_were_used(class_weight):
    data, _ = _data()
    cfg = _cfg("majority")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, class_weight=class_weight))
    plan = plan_round(data, None, cfg, number=2, train=Trainer(), clock=Stopwatch())
    assert ("oos_log_loss_weights_undone" in plan.signal) == (class_weight == "balanced")
    assert plan.signal["ranking_signal"] == plan.signal["signal"] == 1


def test_no_quality_change_is_reported_across_a_change_of_consensus_method(tmp_path):
    """CROWDLAB's first round is the majority vote: its agreement rates against CROWDLAB's qualities the
    round after showed every annotator dropping (e.g. -0.48 since the round before) with nothing changed."""
    data, _ = _data()
    previous = _previous(data)
    first = plan_round(data, None, _cfg("crowdlab"), number=1, train=Trainer(), clock=Stopwatch())
    assert first.agreed.method == "majority"
    first.agreed.annotators.to_csv(tmp_path / "annotators.csv", index=False)  # what the next round reads back
    read_back = pd.read_csv(tmp_path / "annotators.csv")
    second = plan_round(data, previous, _cfg("crowdlab"), number=2, train=Trainer(), clock=Stopwatch(),
                        previous_annotators=read_back)
    assert second.agreed.method == "crowdlab"
    assert second.agreed.annotators["quality_change"].isna().all()
    assert (second.agreed.annotators["consensus_method"] == "crowdlab").all()
    # the same method both rounds: the change is reported (the same labels: no change)
    again = plan_round(data, None, _cfg("majority"), number=2, train=Trainer(), clock=Stopwatch(),
                       previous_annotators=read_back)
    assert (again.agreed.annotators["quality_change"] == 0).all()


def test_a_batch_left_empty_because_every_annotator_is_flagged_says_so():
    data, _ = _data()
    plan = plan_round(data, None, _cfg("majority", min_quality=0.99), number=2, train=Trainer(), clock=Stopwatch())
    assert plan.agreed.annotators["flagged"].all() and plan.batch.empty
    said = [line for _, line in plan.notes if "picks: every annotator" in line]
    # it blamed routing.capacity_per_annotator and money, neither of which is set here
    assert said == ["the batch has 0 of 8 picks: every annotator is flagged (below routing.min_quality 0.99)"]


def test_a_batch_cut_short_by_near_duplicates_says_so():
    """select.duplicate_threshold on embeddings that are all alike: the batch came out with 1 of 8
    picks, and neither the log nor the round's line said why."""
    data, _ = _data()
    cfg = _cfg("majority")
    cfg = dataclasses.replace(cfg, select=dataclasses.replace(cfg.select, duplicate_threshold=0.9))

    def alike(training):
        predictions = Trainer()(training)
        same = np.ones((len(training.texts_labeled) + len(training.texts_unlabeled), 2), dtype=np.float32) / np.sqrt(2)
        return dataclasses.replace(predictions, embeddings=same[:len(training.texts_labeled)],
                                   embeddings_unlabeled=same[len(training.texts_labeled):])

    plan = plan_round(data, None, cfg, number=2, train=alike, clock=Stopwatch())
    assert len(plan.batch) < 8
    said = [line for _, line in plan.notes if "near-duplicates" in line]
    assert said == [f"the batch has {len(plan.batch)} of 8 picks: {len(plan.duplicates)} examples were left out as "
                    "near-duplicates of a pick (cosine above select.duplicate_threshold 0.9)"]
