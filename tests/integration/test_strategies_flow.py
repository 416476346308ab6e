"""Strategies, routing, budget and stopping end to end: simulation arms and campaign rounds."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import yaml

from crowdloop import campaign as campaign_mod
from crowdloop import cli
from crowdloop.flows import simulate
from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import config_checks, demo, simulation_store, store, version

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_strategy_runs_as_a_simulation_arm_with_roi_against_random(replay, base, tmp_path):
    out = tmp_path / "sim"
    simulation_store.write_replay(out, replay)
    arms = tuple(protocol.arm(name) for name in config_checks.STRATEGIES)
    preset = dataclasses.replace(protocol.PRESETS["tutorial"], rounds=2, batch_size=6, arms=arms)
    result = simulate.simulate_flow(str(out), preset, [0], base, "all strategies")
    curves = pd.read_csv(out / "curves.csv")
    assert sorted(curves["strategy"].unique()) == sorted(config_checks.STRATEGIES)
    assert (curves.groupby("strategy")["round"].max() == 2).all()
    assert (curves.loc[curves["round"] == 2, "annotations"] == len(replay.initial) + 6).all()
    assert (curves.loc[curves["round"] == 2, "cost"] == len(replay.initial) + 6).all()  # 1.0 each
    summary = result["summary"]
    for column in ("gain/100 ann", "gain/100 cost", "gain/100 ann vs random", "gain/100 cost vs random"):
        assert column in summary.columns
    assert summary.loc["random", "gain/100 ann vs random"] == 0
    assert "gain/100 ann vs random" in (out / "summary.txt").read_text()


def _set_params(camp, **sections):
    params = yaml.safe_load(camp.params_file.read_text())
    for section, values in sections.items():
        params[section].update(values)
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_round_routes_within_capacity_writes_assignments_and_stops_on_budget(tiny_campaign, capsys):
    camp = tiny_campaign
    stored = store.read_annotations(camp)
    _set_params(camp, routing={"capacity_per_annotator": 1}, budget={"annotations": len(stored) + 5})
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 0
    batch = store.read_batch(camp, 1)
    assert len(batch) == 5  # the budget left, not select.batch_size (8)
    assert batch["suggested_annotator"].value_counts().max() == 1
    done = set(zip(stored["example_id"], stored["annotator_id"]))
    assert not any(pair in done for pair in zip(batch["example_id"], batch["suggested_annotator"]))
    files = sorted((camp.round_dir(1) / "assignments").glob("*.csv"))
    assert [f.stem for f in files] == sorted(batch["suggested_annotator"])
    assert sum(len(pd.read_csv(f)) for f in files) == len(batch)
    metrics = store.read_round_metrics(camp, 1)
    assert metrics["stop"] == 1 and metrics["stop_reason"] == "the annotation budget is spent"
    assert "stopping rule: the annotation budget is spent" in capsys.readouterr().out

    assert cli.main(["-C", str(camp.root), "status"]) == 0
    shown = capsys.readouterr().out
    assert "STOP: the annotation budget is spent" in shown
    assert "  cache: " in shown and " in .cache/ (rebuilt as rounds need it" in shown  # one encoder, in use
    assert "no kept round uses" not in shown
    assert "the stopping rule fired: `crowdloop round --force` runs another round anyway" in shown
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 2
    assert "the stopping rule says stop after round 1" in capsys.readouterr().err
    # --force with --rounds N runs all N, the stopping rule notwithstanding
    assert cli.main(["-C", str(camp.root), "round", "--simulate", "--force", "--rounds", "2"]) == 0
    assert store.completed_rounds(camp) == [1, 2, 3]
    assert "--force: the rounds asked for run on" in capsys.readouterr().out


def test_a_fresh_campaign_with_no_labels_starts_cold(tmp_path, tiny_model_dir):
    data = demo.make_demo(seed=3, n_pool=40, n_test=10, n_initial=0, n_annotators=4, answers_per_example=2)
    camp = campaign_mod.init_campaign(tmp_path / "fresh", data.examples, classes=demo.DEMO_CLASSES, seed=3)
    _set_params(camp, model={"name": str(tiny_model_dir), "backend": "head", "max_length": 32},
                select={"batch_size": 6})
    from crowdloop.flows.round import round_flow

    result = round_flow(str(camp.root))
    assert result.strategy == "cold_start"
    batch = store.read_batch(camp, 1)
    assert len(batch) == 6 and batch["example_id"].is_unique
    assert (camp.round_dir(1) / "assignments" / "unassigned.csv").is_file()  # nobody known yet


def test_labels_of_one_class_start_cold_and_the_model_comes_once_a_second_class_is_labeled(tmp_path,
                                                                                          tiny_model_dir, capsys):
    """Every answer so far gives one class: the round used to fail ("needs at least 2 labeled examples of
    2 classes") and leave no batch, so the team had nothing to label that could bring a second class.
    It now sends a cold-start batch (examples unlike each other, none labeled yet) and says why."""
    data = demo.make_demo(seed=3, n_pool=40, n_test=10, n_initial=0, n_annotators=4, answers_per_example=2)
    pool = data.examples[data.examples["split"] == "pool"]
    first = pool["example_id"].iloc[:3].tolist()
    initial = pd.DataFrame({"example_id": first, "annotator_id": ["a0", "a1", "a0"], "label": demo.DEMO_CLASSES[0]})
    camp = campaign_mod.init_campaign(tmp_path / "one", data.examples, classes=demo.DEMO_CLASSES, seed=3,
                                      initial=initial)
    _set_params(camp, model={"name": str(tiny_model_dir), "backend": "head", "max_length": 32},
                select={"batch_size": 6})
    assert cli.main(["-C", str(camp.root), "round"]) == 0
    out = capsys.readouterr()
    assert "round 1: labels of one class so far, no model to score, 3 annotations, batch of 6" in out.out
    assert "the consensus labels so far are 3 examples of 1 class: no model until a second class" in out.err
    assert "score.strategy auto -> cold_start" in out.err
    batch = store.read_batch(camp, 1)
    assert len(batch) == 6 and batch["example_id"].is_unique and not set(batch["example_id"]) & set(first)
    assert store.read_round_metrics(camp, 1)["model_trained"] == 0
    assert version.subject(camp) == "Round 1: asked for 6 annotations; no model yet"  # not "test accuracy nan"

    answers = batch.loc[:, ["example_id"]].assign(annotator_id="a2", label=[*demo.DEMO_CLASSES[:2]] * 3)
    answers.to_csv(tmp_path / "answers.csv", index=False)
    assert cli.main(["-C", str(camp.root), "ingest", str(tmp_path / "answers.csv")]) == 0
    assert cli.main(["-C", str(camp.root), "round"]) == 0
    metrics = store.read_round_metrics(camp, 2)
    assert "the last round trained no model: the consensus is the majority vote" in capsys.readouterr().err
    assert metrics["model_trained"] == 1 and 0 <= metrics["test_accuracy"] <= 1
    assert version.subject(camp) == f"Round 2: asked for 6 annotations; test accuracy {metrics['test_accuracy']:.3f}"
