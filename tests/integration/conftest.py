"""A tiny demo campaign and a tiny replay (tens of examples, tiny random BERT) for end-to-end tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from crowdloop import campaign as campaign_mod
from crowdloop.tasks import demo, importers, replay_split


def make_tiny_campaign(root: Path, model_dir: Path, **sections):
    """A committed campaign (round 0) at ``root`` whose params use the tiny model and small
    batches; ``sections`` are laid over params.yaml section by section."""
    data = demo.make_demo(seed=1, n_pool=60, n_test=20, n_initial=30, n_annotators=6,
                          answers_per_example=4)
    made = campaign_mod.init_campaign(root, data.examples, classes=demo.DEMO_CLASSES, seed=1,
                                      initial=data.initial, simulator=data.answers)
    params = yaml.safe_load(made.params_file.read_text())
    params["model"].update({"name": str(model_dir), "backend": "head", "max_length": 32,
                            "minibatch_size": 16})
    params["model"]["head"]["C_grid"] = [1.0, 10.0]
    params["select"]["batch_size"] = 8
    for section, values in sections.items():
        params[section].update(values)
    made.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return made


@pytest.fixture
def tiny_campaign(tmp_path, tiny_model_dir):
    """A committed campaign (round 0) whose params use the tiny model and small batches."""
    return make_tiny_campaign(tmp_path / "camp", tiny_model_dir)


@pytest.fixture(scope="session")
def campaign_factory(tiny_model_dir):
    """``make(root, **sections)``: :func:`make_tiny_campaign` with the tiny model."""
    return lambda root, **sections: make_tiny_campaign(root, tiny_model_dir, **sections)


@pytest.fixture
def replay():
    """A generated dataset split for simulation: 20 examples x 2 labels to start, answers to draw from."""
    data = demo.make_demo(seed=2, n_pool=60, n_test=20, n_initial=0, n_annotators=6, answers_per_example=4)
    return replay_split.split_for_simulation(
        importers.Replay(data.examples, data.initial, data.answers, demo.DEMO_CLASSES),
        seed=0, n_start=20, labels_per_start=2)


@pytest.fixture
def base(cfg):
    """The tiny-model config on the head backend with a single C (fast fits)."""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backend="head",
                                                              head=dataclasses.replace(cfg.model.head, C_grid=(1.0,))))


@pytest.fixture
def round_runs():
    """``round_runs(campaign, uri=None)``: the finished round runs in MLflow, by round."""
    return _round_runs


@pytest.fixture
def get_run():
    """``get_run(campaign, run_id, uri=None)``: one MLflow run of the campaign's tracking store."""
    return _get_run


def _round_runs(campaign, *, uri: str | None = None) -> list[dict]:
    """The campaign's finished round runs in MLflow: ``{round, run_id, metrics, tags}``, by round."""
    from mlflow.tracking import MlflowClient

    from crowdloop.tasks import config, lineage, track

    client = MlflowClient(track.tracking_uri(campaign.mlruns, uri))
    experiment = client.get_experiment_by_name(lineage.campaign_name(campaign, config.load(campaign.params_file).name))
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id],
                              filter_string="tags.crowdloop.run_kind = 'round' and attributes.status = 'FINISHED'")
    rows = [{"round": int(r.data.tags["crowdloop.round"]), "run_id": r.info.run_id, "metrics": dict(r.data.metrics),
             "tags": dict(r.data.tags), "status": r.info.status} for r in runs]
    return sorted(rows, key=lambda r: r["round"])


def _get_run(campaign, run_id: str, *, uri: str | None = None):
    """The MLflow run ``run_id`` of the campaign's tracking store."""
    from mlflow.tracking import MlflowClient

    from crowdloop.tasks import track

    return MlflowClient(track.tracking_uri(campaign.mlruns, uri)).get_run(run_id)
