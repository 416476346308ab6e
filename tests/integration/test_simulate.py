"""A 3-round simulation of a tiny generated dataset through Prefect and MLflow."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from crowdloop.flows import simulate
from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import annotators, demo, importers, replay_split, simulation_store
from crowdloop.tasks.models.encoder import FrozenEncoder

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(out, base, rounds, seeds=(0, 1), answered_by="tutorial", shared_cache=None, evaluate="test"):
    preset = dataclasses.replace(protocol.PRESETS["tutorial"], rounds=rounds, batch_size=6, answered_by=answered_by,
                                 evaluate=evaluate)
    return simulate.simulate_flow(str(out), preset, list(seeds), base, "tiny", shared_cache=shared_cache)


def test_simulation_writes_curves_figure_and_mlflow_runs_and_resumes(replay, base, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    simulation_store.write_replay(out, replay)
    result = _run(out, base, rounds=2)
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 2 * 2 * 2  # arms × seeds × rounds
    assert set(curves.columns) >= {"strategy", "seed", "round", "annotations", "test_accuracy", "test_macro_f1",
                                   "consensus_accuracy"}
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    first = curves[curves["round"] == 1]["annotations"]
    assert (first == len(replay.initial)).all()
    assert (curves[curves["round"] == 2]["annotations"] == len(replay.initial) + 6).all()

    # resume: asking for 3 rounds only runs round 3 of each arm × seed
    calls = []
    real = simulate.train_and_predict
    monkeypatch.setattr(simulate, "train_and_predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = _run(out, base, rounds=3)
    assert len(calls) == 4
    curves = pd.read_csv(out / "curves.csv")
    assert sorted(curves["round"].unique()) == [1, 2, 3]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    parent = client.get_run(result["run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'")
    assert len(children) == 4
    history = client.get_metric_history(children[0].info.run_id, "test_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(result["run_id"])}
    assert {"curves.csv", "learning_curve.png"} <= artifacts
    logged = parent.data.params  # what the curves depend on, beside what this call ran
    assert logged["params.consensus.crowdlab_label"] == base.consensus.crowdlab_label
    assert logged["params.model.head.pooling"] == base.model.head.pooling
    assert logged["preset.answered_by"] == "tutorial" and logged["rounds"] == "3"

    # fewer rounds than the folder holds: the first ones, from the checkpoints, nothing run again
    calls.clear()
    _run(out, base, rounds=1)
    assert not calls
    assert sorted(pd.read_csv(out / "curves.csv")["round"].unique()) == [1]


def test_each_round_s_log_line_names_the_split_it_scored(tmp_path, base, caplog):
    data = demo.make_demo(seed=2, n_pool=60, n_test=20, n_initial=0, n_annotators=6, answers_per_example=4)
    whole = importers.Replay(data.examples, data.initial, data.answers, demo.DEMO_CLASSES)
    for evaluate in protocol.EVALUATE:
        out = tmp_path / evaluate
        simulation_store.write_replay(out, replay_split.split_for_simulation(whole, seed=0, n_start=20,
                                                                             labels_per_start=2, evaluate=evaluate))
        with caplog.at_level("INFO", logger="crowdloop"):
            _run(out, base, rounds=1, seeds=(0,), evaluate=evaluate)
        assert "auto seed 0 round 1/1: 40 annotations, " + evaluate + " accuracy" in caplog.text
    assert "test accuracy" in caplog.text and "validation accuracy" in caplog.text


def test_simulations_sharing_an_embedding_cache_embed_each_text_once(replay, base, tmp_path, monkeypatch):
    shared = tmp_path / "embeddings"
    first, second, alone = tmp_path / "first", tmp_path / "second", tmp_path / "alone"
    for out in (first, second, alone):
        simulation_store.write_replay(out, replay)
    encoded = []
    real = FrozenEncoder._encode
    monkeypatch.setattr(FrozenEncoder, "_encode", lambda self, texts: encoded.append(len(texts)) or real(self, texts))

    _run(first, base, rounds=2, seeds=(0,), shared_cache=str(shared))
    chunks = sorted(shared.rglob("*.keys.npy"))
    assert chunks and sum(encoded) == len(replay.examples) and not (first / ".cache").exists()

    encoded.clear()  # a second simulation of the same texts embeds nothing and adds nothing
    _run(second, base, rounds=2, seeds=(0,), shared_cache=str(shared))
    assert encoded == [] and sorted(shared.rglob("*.keys.npy")) == chunks

    _run(alone, base, rounds=2, seeds=(0,))  # its own cache: embeds again, decides the same
    assert sum(encoded) == len(replay.examples) and (alone / ".cache").is_dir()
    timed = ["seconds"]
    pd.testing.assert_frame_equal(pd.read_csv(second / "curves.csv").drop(columns=timed),
                                  pd.read_csv(alone / "curves.csv").drop(columns=timed))


@pytest.mark.parametrize("answered_by", ["tutorial", "routed"])
def test_simulated_annotators_never_repeat_or_invent_annotations(replay, base, tmp_path, answered_by):
    out = tmp_path / "sim"
    simulation_store.write_replay(out, replay)
    _run(out, base, rounds=3, seeds=(0,), answered_by=answered_by)
    pool = set(map(tuple, replay.uncollected[["example_id", "annotator_id", "label"]].values.tolist()))
    initial = set(map(tuple, replay.initial[["example_id", "annotator_id", "label"]].values.tolist()))
    for arm in ("auto", "random"):
        _, collected, _ = simulation_store.read_checkpoint(out / "checkpoints" / f"{arm}-seed0")
        pairs = collected[["example_id", "annotator_id"]]
        assert not pairs.duplicated().any()
        handed = collected[collected["round"] > 0][["example_id", "annotator_id", "label"]]
        assert set(map(tuple, handed.values.tolist())) <= pool
        assert len(handed) == 3 * 6
        assert set(map(tuple, collected[collected["round"] == 0][["example_id", "annotator_id", "label"]]
                       .values.tolist())) == initial


def test_consensus_bake_off_arms_and_an_annotator_who_goes_bad(replay, base, tmp_path):
    out = tmp_path / "sim"
    simulation_store.write_replay(out, replay)
    arms = tuple(protocol.arm("activelab", method) for method in ("dawid_skene", "mace"))
    assert [a.name for a in arms] == ["activelab+dawid_skene", "activelab+mace"]
    preset = dataclasses.replace(protocol.PRESETS["tutorial"], rounds=3, batch_size=6, answered_by="routed",
                                 goes_bad=2, arms=arms)
    simulate.simulate_flow(str(out), preset, [0], base, "tiny")
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["strategy"]) == {"activelab+dawid_skene", "activelab+mace"}
    assert curves["krippendorff_alpha"].notna().all() and curves["unanimous_share"].between(0, 1).all()
    bad = annotators.busiest(replay.uncollected)
    truth = replay.uncollected.set_index(["example_id", "annotator_id"])["label"]
    for arm in arms:
        _, collected, _ = simulation_store.read_checkpoint(out / "checkpoints" / f"{arm.name}-seed0")
        theirs = collected[collected["annotator_id"] == bad]
        before, after = theirs[theirs["round"] == 1], theirs[theirs["round"] >= 2]
        # before the turn their answers are the dataset's; from round 2 on they are drawn at random
        assert (before.set_index(["example_id", "annotator_id"])["label"] == truth.loc[before.set_index(
            ["example_id", "annotator_id"]).index]).all()
        rows = curves[curves["strategy"] == arm.name].set_index("round")
        assert rows.loc[[2, 3], "bad_answers"].sum() == len(after)
        assert rows.loc[1, "bad_answers"] == 0 < len(before)  # their answers before the turn are not bad ones
