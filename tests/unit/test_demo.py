"""The demo campaign generator: sizes, determinism, text variety, simulated annotators."""

from __future__ import annotations

import re
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks.demo import DEMO_CLASSES, make_demo
from crowdloop.tasks.demo_text import MAX_WORDS, MIN_WORDS, write_ticket
from crowdloop.tasks.schema import ANSWER_COLUMNS, EXAMPLE_COLUMNS

SMALL = dict(n_pool=40, n_test=12, n_initial=10, n_annotators=6, answers_per_example=3)


@pytest.fixture(scope="module")
def demo():
    return make_demo(seed=0)


def test_same_seed_gives_identical_data_and_other_seed_differs():
    first, again, other = make_demo(seed=3, **SMALL), make_demo(seed=3, **SMALL), make_demo(seed=4, **SMALL)
    for name in ("examples", "initial", "answers"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert first.annotator_accuracy == again.annotator_accuracy
    assert not first.examples["text"].equals(other.examples["text"])
    assert not first.answers.equals(other.answers)
    assert first.annotator_accuracy != other.annotator_accuracy


def test_default_sizes_columns_and_ids(demo):
    examples = demo.examples
    assert list(examples.columns) == list(EXAMPLE_COLUMNS)
    assert list(demo.answers.columns) == list(ANSWER_COLUMNS)
    assert list(demo.initial.columns) == list(ANSWER_COLUMNS)
    assert (examples["split"] == "pool").sum() == 1500
    assert (examples["split"] == "test").sum() == 300
    # Pool first, then test; ids stable and sorted.
    assert examples["split"].tolist() == ["pool"] * 1500 + ["test"] * 300
    assert examples["example_id"].iloc[0] == "t00001"
    assert examples["example_id"].is_unique and examples["example_id"].is_monotonic_increasing
    assert examples["example_id"].str.fullmatch(r"t\d{5}").all()
    assert sorted(demo.annotator_accuracy) == [f"a{j:02d}" for j in range(1, 13)]
    assert len(demo.answers) == 1500 * 5


def test_every_class_in_both_splits_and_labels_are_class_names(demo):
    examples = demo.examples
    for split in ("pool", "test"):
        assert set(examples.loc[examples["split"] == split, "gold"]) == set(DEMO_CLASSES)
    assert set(demo.answers["label"]) | set(demo.initial["label"]) <= set(DEMO_CLASSES)


def test_texts_are_unique_and_short(demo):
    texts = demo.examples["text"]
    assert texts.is_unique
    lengths = texts.str.split().str.len()
    assert lengths.between(MIN_WORDS, MAX_WORDS).all()


def test_texts_have_lexical_variety(demo):
    texts = demo.examples["text"].str.lower()
    word_types = {w for t in texts for w in re.findall(r"[a-z]+", t)}
    assert len(word_types) > 500
    prefixes = Counter(" ".join(t.split()[:3]) for t in texts)
    assert prefixes.most_common(1)[0][1] < 0.05 * len(texts)


def test_initial_labels_one_or_two_per_labeled_example_from_distinct_annotators(demo):
    initial = demo.initial
    per_example = initial.groupby("example_id")["annotator_id"].agg(["size", "nunique"])
    assert len(per_example) == 300
    assert per_example["size"].between(1, 2).all()
    assert (per_example["size"] == per_example["nunique"]).all()
    # A mix: some examples start with one label, some with two.
    assert set(per_example["size"]) == {1, 2}
    pool_ids = set(demo.examples.loc[demo.examples["split"] == "pool", "example_id"])
    assert set(initial["example_id"]) <= pool_ids


def test_answers_cover_the_pool_only_and_never_repeat_an_annotator(demo):
    pool_ids = demo.examples.loc[demo.examples["split"] == "pool", "example_id"]
    per_example = demo.answers.groupby("example_id")["annotator_id"].nunique()
    assert set(per_example.index) == set(pool_ids)
    assert (per_example == 5).all()
    both = pd.concat([demo.initial, demo.answers])
    assert not both.duplicated(["example_id", "annotator_id"]).any()


def test_annotators_answer_with_their_stated_accuracy(demo):
    answers = demo.answers.merge(demo.examples[["example_id", "gold"]], on="example_id")
    empirical = (answers["label"] == answers["gold"]).groupby(answers["annotator_id"]).mean()
    for annotator, accuracy in demo.annotator_accuracy.items():
        assert empirical[annotator] == pytest.approx(accuracy, abs=0.06), annotator
    accuracies = np.array(list(demo.annotator_accuracy.values()))
    assert accuracies.min() < 0.45 and accuracies.max() > 0.85


def test_annotators_disagree_on_some_examples(demo):
    distinct_labels = demo.answers.groupby("example_id")["label"].nunique()
    assert (distinct_labels > 1).mean() > 0.3
    assert (distinct_labels == 1).mean() > 0.05


def test_tfidf_classifier_finds_the_task_learnable_but_not_trivial(demo):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    examples = demo.examples
    pool, test = examples[examples["split"] == "pool"], examples[examples["split"] == "test"]
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=10.0, max_iter=2000))
    model.fit(pool["text"], pool["gold"])
    accuracy = (model.predict(test["text"]) == test["gold"].to_numpy()).mean()
    assert 0.6 < accuracy < 0.99


def test_small_campaign_keeps_every_class_and_the_answer_count():
    small = make_demo(seed=1, n_pool=8, n_test=4, n_initial=8, n_annotators=4, answers_per_example=2)
    examples = small.examples
    assert set(examples.loc[examples["split"] == "test", "gold"]) == set(DEMO_CLASSES)
    assert len(small.answers) == 8 * 2
    assert small.initial["example_id"].nunique() == 8


def test_default_size_is_fast():
    start = time.perf_counter()
    make_demo(seed=5)
    assert time.perf_counter() - start < 2.0


def test_write_ticket_is_reproducible_from_its_generator():
    texts = [write_ticket(np.random.default_rng(7), "shipping", secondary="billing") for _ in range(2)]
    assert texts[0] == texts[1]
    assert MIN_WORDS <= len(texts[0].split()) <= MAX_WORDS


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(classes=("billing", "technical", "shipping", "refund")), "classes"),
        (dict(classes=("technical", "billing", "shipping", "account")), "classes"),
        (dict(n_pool=3), "n_pool"),
        (dict(n_test=0), "n_test"),
        (dict(n_initial=41), "n_initial"),
        (dict(n_initial=-1), "n_initial"),
        (dict(answers_per_example=0), "answers_per_example"),
        (dict(n_annotators=4), "n_annotators"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_demo(**{**SMALL, **kwargs})
