"""A simulation's output folder holds one setting: prepare() refuses to mix another into it."""

import dataclasses
import json

import pytest

from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import config as config_mod
from crowdloop.tasks import demo, importers, replay_split, simulation_store
from crowdloop.tasks.errors import CampaignError


@pytest.fixture
def replay():
    data = demo.make_demo(seed=1, n_pool=30, n_test=10, n_initial=0, n_annotators=5, answers_per_example=3)
    return replay_split.split_for_simulation(importers.Replay(data.examples, data.initial, data.answers,
                                                           demo.DEMO_CLASSES), seed=0, n_start=10, labels_per_start=2)


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_prepare_writes_the_replay_and_accepts_the_same_settings_again(replay, tmp_path):
    settings = protocol.run_settings(config_mod.load(), protocol.PRESETS["tutorial"])
    simulation_store.prepare(tmp_path, replay, settings)
    back = simulation_store.read_replay(tmp_path)
    assert back.classes == replay.classes and back.uncollected.equals(replay.uncollected.reset_index(drop=True))
    before = _files(tmp_path)
    simulation_store.prepare(tmp_path, replay, settings)  # a resumed run
    assert _files(tmp_path) == before


def test_more_rounds_or_another_arm_extend_a_run_but_other_settings_are_refused(replay, tmp_path):
    base, preset = config_mod.load(), protocol.PRESETS["tutorial"]
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, preset))
    (tmp_path / "checkpoints" / "activelab-seed0").mkdir(parents=True)
    before = _files(tmp_path)
    longer = dataclasses.replace(preset, rounds=40, arms=(protocol.arm("margin"),))
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, longer))

    other_model = dataclasses.replace(base, model=dataclasses.replace(base.model, max_length=128))
    with pytest.raises(CampaignError, match=r"other settings \(different params: model\.max_length\).*another --out"):
        simulation_store.prepare(tmp_path, replay, protocol.run_settings(other_model, preset))
    with pytest.raises(CampaignError, match=r"\(different preset: batch_size, labels_per_start\)"):
        simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, protocol.PRESETS["rte"]))
    fewer = dataclasses.replace(replay, uncollected=replay.uncollected.iloc[1:])
    with pytest.raises(CampaignError, match=r"\(different data or the split and start drawn from it\)"):
        simulation_store.prepare(tmp_path, fewer, protocol.run_settings(base, preset))
    assert _files(tmp_path) == before  # nothing was changed by the refusals


def test_the_campaign_s_name_is_no_setting_of_a_simulation(replay, tmp_path):
    base, preset = config_mod.load(), protocol.PRESETS["tutorial"]
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, preset))
    named = dataclasses.replace(base, name="support")
    assert "name" not in protocol.run_settings(named, preset)["params"]  # settings.json written before the key match
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(named, preset))  # resumes


def test_checkpoints_without_settings_are_not_resumed_blindly(replay, tmp_path):
    (tmp_path / "checkpoints" / "random-seed0").mkdir(parents=True)
    with pytest.raises(CampaignError, match="no settings.json"):
        simulation_store.prepare(tmp_path, replay, {"preset": {}})
    assert not (tmp_path / "replay").exists()


def test_a_checkpoint_s_curve_rows_read_back_bit_for_bit(tmp_path):
    """A resumed simulation (more rounds, a worker or scheduler lost, Ctrl-C) rewrites its curve rows from
    the checkpoint: they were read back a unit in the last place off, so curves.csv differed."""
    import pandas as pd

    # metrics of a politeness run that pandas' default parser read back otherwise
    rows = pd.DataFrame({"round": [1, 2, 3, 4, 5], "test_accuracy": [0.9291662678280845, 0.9026548672566371,
                                                                     0.37132853530441545, 0.9026336861161399,
                                                                     0.9291733407618915]})
    probs = pd.DataFrame({"a": [0.5]}, index=pd.Index(["e1"], name="example_id"))
    simulation_store.write_checkpoint(tmp_path, rows=rows, annotations=pd.DataFrame({"example_id": ["e1"]}),
                                      pred_probs=probs)
    back, _, _ = simulation_store.read_checkpoint(tmp_path)
    assert back["test_accuracy"].tolist() == rows["test_accuracy"].tolist()


def test_a_params_key_every_arm_sets_for_itself_is_no_setting_of_a_simulation(replay, tmp_path):
    # score.strategy, consensus.method, predict.folds, the batch, the seed: --strategies, --consensus, the preset
    base, preset = config_mod.load(), protocol.PRESETS["tutorial"]
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, preset))
    unread = dataclasses.replace(base, seed=7, score=dataclasses.replace(base.score, strategy="margin"),
                                 consensus=dataclasses.replace(base.consensus, method="majority"),
                                 predict=dataclasses.replace(base.predict, folds=base.predict.folds + 2),
                                 select=dataclasses.replace(base.select, batch_size=3, max_annotations_per_example=2))
    arm = protocol.arm("auto")
    assert (protocol.arm_config(unread, preset, arm, seed=0, classes=replay.classes)
            == protocol.arm_config(base, preset, arm, seed=0, classes=replay.classes))  # the rounds run the same
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(unread, preset))  # so the run resumes
    written = json.loads((tmp_path / "settings.json").read_text())  # as a run before this fix wrote it
    written["params"]["score"]["strategy"] = "margin"
    (tmp_path / "settings.json").write_text(json.dumps(written))
    simulation_store.prepare(tmp_path, replay, protocol.run_settings(base, preset))
    read = dataclasses.replace(base, score=dataclasses.replace(base.score, signal_strategy="margin"))
    with pytest.raises(CampaignError, match=r"\(different params: score\.signal_strategy\)"):  # the arms read it
        simulation_store.prepare(tmp_path, replay, protocol.run_settings(read, preset))
