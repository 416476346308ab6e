"""The score step: dispatch by name, user strategies, cold start, and config-time name checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import config, config_checks
from crowdloop.tasks.scoring import strategies
from crowdloop.tasks.scoring import AUTO, effective_strategy, resolve, score
from crowdloop.tasks.scoring.strategies import ScoreInputs

LABELS = pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 1.0]}, index=["l0", "l1"])
INPUTS = ScoreInputs(labels_multiannotator=LABELS, n_unlabeled=3, n_classes=2,
                     pred_probs=np.array([[0.6, 0.4], [0.2, 0.8]]),
                     pred_probs_unlabeled=np.array([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]]))

USER_MODULE = '''
import numpy as np

def longest_text_first(inputs, *, seed):
    return np.ones(inputs.n_labeled), np.arange(inputs.n_unlabeled, dtype=float)[::-1]

def wrong_shape(inputs, *, seed):
    return np.ones(1), np.ones(1)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_strategies"


def test_builtin_names_match_the_config_choices():
    assert set(strategies.BUILTIN) | {AUTO} == set(config_checks.STRATEGIES)


def test_score_dispatches_by_name():
    s_l, s_u = score("entropy", INPUTS, seed=0)
    np.testing.assert_array_equal(s_u, strategies.entropy(INPUTS, seed=0)[1])
    assert np.argmin(s_u) == 1


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown score strategy 'nope'; known: activelab, activelab_ensemble"):
        resolve("nope")


def test_a_user_strategy_named_module_function_is_used(user_module):
    s_l, s_u = score(f"{user_module}:longest_text_first", INPUTS, seed=0)
    assert list(s_u) == [2.0, 1.0, 0.0]
    with pytest.raises(config.ConfigError, match="'score.strategy' '.*:wrong_shape' returned scores of shapes"):
        score(f"{user_module}:wrong_shape", INPUTS, seed=0)  # a user's mistake: one line, no traceback


def test_config_load_rejects_unknown_strategies_with_the_known_list(user_module):
    raw = config.load().to_dict()
    raw["score"]["strategy"] = "bayes"
    with pytest.raises(config.ConfigError, match="unknown 'score.strategy' 'bayes'; known: auto, activelab, "):
        config.from_dict(raw)
    raw["score"]["strategy"] = "no_such_module:f"
    with pytest.raises(config.ConfigError, match="cannot import 'no_such_module'"):
        config.from_dict(raw)
    raw["score"]["strategy"] = f"{user_module}:missing"
    with pytest.raises(config.ConfigError, match="has no function 'missing'; known built-in strategies"):
        config.from_dict(raw)
    raw["score"]["strategy"] = f"{user_module}:longest_text_first"
    assert config.from_dict(raw).score.strategy == f"{user_module}:longest_text_first"


def test_with_nothing_labeled_a_model_strategy_becomes_cold_start():
    empty = ScoreInputs(labels_multiannotator=LABELS.iloc[:0], n_unlabeled=4, n_classes=2, batch_size=2,
                        embeddings_unlabeled=np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]]))
    assert effective_strategy("activelab", empty, cold_start=True) == "cold_start"
    assert effective_strategy("activelab", empty, cold_start=False) == "activelab"
    assert effective_strategy("random", empty, cold_start=True) == "random"
    assert effective_strategy("activelab", INPUTS, cold_start=True) == "activelab"
    _, s_u = score(effective_strategy("bald", empty, cold_start=True), empty, seed=0)
    first_two = set(np.argsort(s_u)[:2])
    assert len(first_two & {0, 1}) == 1 and len(first_two & {2, 3}) == 1  # one per cluster


def test_a_model_strategy_with_nothing_labeled_and_no_cold_start_is_one_line_saying_what_to_set():
    """score.strategy activelab with score.cold_start false in a campaign with no answers yet:
    the round failed with a ValueError traceback from inside the flow."""
    from crowdloop.tasks.errors import CrowdloopError

    empty = ScoreInputs(labels_multiannotator=LABELS.iloc[:0], n_unlabeled=4, n_classes=2, batch_size=2,
                        embeddings_unlabeled=np.zeros((4, 2)))
    for name in ("activelab", "badge", "margin"):
        with pytest.raises(CrowdloopError, match=rf"score.strategy: the {name} strategy needs .*pred_probs.*; nothing "
                                                 r"is labeled yet, so no model is trained; set score.cold_start: true"):
            score(name, empty, seed=0)


def test_labels_without_a_model_start_cold_and_a_model_strategy_without_cold_start_says_why():
    """Labels of one class: the round trains no model (pred_probs None), as with nothing labeled."""
    from crowdloop.tasks.errors import CrowdloopError

    untrained = dataclasses.replace(INPUTS, pred_probs=None, pred_probs_unlabeled=None,
                                    embeddings_unlabeled=np.zeros((INPUTS.n_unlabeled, 2)))
    assert untrained.n_labeled > 0
    assert effective_strategy("auto", untrained, cold_start=True) == "cold_start"
    assert effective_strategy("activelab", untrained, cold_start=False) == "activelab"
    with pytest.raises(CrowdloopError, match=r"the labels so far are of one class, so no model is trained; set "
                                             r"score.cold_start: true"):
        score("activelab", untrained, seed=0)
