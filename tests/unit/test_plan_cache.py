"""The plan cache's key (a content fingerprint) and its store."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from crowdloop.tasks import plan_cache
from crowdloop.tasks.fingerprint import fingerprint


@dataclasses.dataclass(frozen=True)
class Inputs:
    frame: pd.DataFrame
    array: np.ndarray
    options: dict


def _inputs(**changes) -> Inputs:
    frame = pd.DataFrame({"example_id": ["a", "b", "c"], "label": [0, 1, 1]}, index=[10, 11, 12])
    base = Inputs(frame, np.array([[0.2, 0.8], [0.6, 0.4]]), {"seed": 0, "holders": {"a": {"x", "y"}}})
    return dataclasses.replace(base, **changes)


def test_equal_content_has_equal_fingerprints_whatever_the_objects():
    first, second = _inputs(), _inputs()
    assert first.frame is not second.frame
    assert fingerprint(first) == fingerprint(second)
    # a set's order and a dict's insertion order are not content
    assert fingerprint({"b": {3, 1, 2}, "a": 1}) == fingerprint({"a": 1, "b": {2, 3, 1}})


@pytest.mark.parametrize("change", [
    {"frame": pd.DataFrame({"example_id": ["a", "b", "c"], "label": [0, 1, 0]}, index=[10, 11, 12])},  # a cell
    {"frame": pd.DataFrame({"example_id": ["a", "b", "c"], "label": [0, 1, 1]}, index=[10, 11, 13])},  # the index
    {"frame": pd.DataFrame({"example_id": ["a", "b", "c"], "answer": [0, 1, 1]}, index=[10, 11, 12])},  # a name
    {"frame": pd.DataFrame({"example_id": ["a", "b", "c"], "label": [0.0, 1.0, 1.0]}, index=[10, 11, 12])},  # dtype
    {"array": np.array([[0.2, 0.8], [0.6, 0.41]])},
    {"array": np.array([0.2, 0.8, 0.6, 0.4])},  # same bytes, another shape
    {"options": {"seed": 1, "holders": {"a": {"x", "y"}}}},
    {"options": {"seed": 0, "holders": {"a": {"x"}}}},
    {"options": {"seed": "0", "holders": {"a": {"x", "y"}}}},  # "0" is not 0
])
def test_any_change_of_content_changes_the_fingerprint(change):
    assert fingerprint(_inputs(**change)) != fingerprint(_inputs())


def test_a_type_it_does_not_know_is_an_error_not_skipped():
    with pytest.raises(TypeError, match="cannot fingerprint a object"):
        fingerprint({"callback": object()})


def test_a_plan_is_read_back_under_its_key_only(tmp_path):
    key = plan_cache.key({"inputs": _inputs()})
    assert plan_cache.key({"inputs": _inputs()}) == key
    assert plan_cache.read(tmp_path, key) is None
    plan_cache.write(tmp_path, key, {"batch": [1, 2, 3]}, "training-key")
    assert plan_cache.read(tmp_path, key) == ({"batch": [1, 2, 3]}, "training-key")
    other = plan_cache.key({"inputs": _inputs(options={"seed": 1})})
    assert plan_cache.read(tmp_path, other) is None


def test_an_unreadable_stored_plan_is_a_miss_with_a_warning(tmp_path, caplog):
    key = plan_cache.key({"inputs": 1})
    path = plan_cache.write(tmp_path, key, {"batch": []}, "training-key")
    path.write_bytes(path.read_bytes()[:20])  # torn
    assert plan_cache.read(tmp_path, key) is None
    assert "ignoring the unreadable stored plan" in caplog.text


def test_only_as_many_plans_as_predictions_are_kept(tmp_path):
    keys = [plan_cache.key({"round": n}) for n in range(plan_cache.KEPT + 2)]
    for age, key in enumerate(keys):
        path = plan_cache.write(tmp_path, key, {"round": age}, None)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # written one after another
    assert [plan_cache.read(tmp_path, k) is not None for k in keys] == [False] * 2 + [True] * plan_cache.KEPT


def test_the_code_version_covers_crowdloops_sources_and_libraries(monkeypatch):
    plan_cache.code_version.cache_clear()
    before = plan_cache.code_version()
    plan_cache.code_version.cache_clear()
    monkeypatch.setattr(plan_cache, "_version", lambda library: "9.9" if library == "cleanlab" else "1.0")
    assert plan_cache.code_version() != before
    plan_cache.code_version.cache_clear()


def test_rounds_run_without_prefect_heartbeats_unless_the_user_asks_for_them(monkeypatch):
    from prefect.settings import get_current_settings

    from crowdloop.flows import steps

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    with steps.without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency is not None  # Prefect's default again
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    with steps.without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is not None  # asked for: kept
