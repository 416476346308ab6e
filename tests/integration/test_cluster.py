"""A round and a 2-arm simulation on a dask.distributed LocalCluster of two worker processes decide
exactly what they decide in one process with the same seed (flows/compute.py)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from distributed import get_task_stream

from crowdloop import api
from crowdloop.flows import simulate, steps
from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import simulation_store, store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes on 127.0.0.1, closed after the module's tests."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local, Client(local) as client:
        yield client


def _ran_there(stream) -> dict[str, int]:
    """Jobs of crowdloop's worker task (steps.on_worker) per Dask worker, from a task stream."""
    workers = [record["worker"] for record in stream.data if str(record["key"]).startswith(steps.on_worker.fn.__name__)]
    return {worker: workers.count(worker) for worker in set(workers)}


def test_a_simulation_on_a_cluster_gives_the_curves_and_batches_of_the_local_run(replay, base, tmp_path, cluster):
    preset = dataclasses.replace(protocol.PRESETS["tutorial"], rounds=3, batch_size=6)
    here, there = tmp_path / "here", tmp_path / "there"
    on_cluster = dataclasses.replace(base, compute=dataclasses.replace(base.compute, dask_address=cluster.scheduler.address))
    assert protocol.run_settings(on_cluster, preset) == protocol.run_settings(base, preset)  # the same simulation
    for out, cfg in ((here, base), (there, on_cluster)):
        simulation_store.write_replay(out, replay)
        with get_task_stream(cluster) as stream:
            simulate.simulate_flow(str(out), preset, [0, 1], cfg, "tiny")
        ran = _ran_there(stream)
    assert sum(ran.values()) == 4  # each arm x seed ran on a worker of the cluster
    columns = lambda frame: frame.drop(columns=["seconds"])  # noqa: E731 (wall time differs)
    local, remote = (columns(pd.read_csv(out / "curves.csv")) for out in (here, there))
    assert len(local) == 2 * 2 * 3 and local["test_accuracy"].notna().all()
    pd.testing.assert_frame_equal(local, remote)
    for name in ("auto-seed0", "auto-seed1", "random-seed0", "random-seed1"):
        _, asked_here, probs_here = simulation_store.read_checkpoint(here / "checkpoints" / name)
        _, asked_there, probs_there = simulation_store.read_checkpoint(there / "checkpoints" / name)
        pd.testing.assert_frame_equal(asked_here, asked_there)  # every round's batch and answers
        pd.testing.assert_frame_equal(probs_here, probs_there)


def test_a_round_on_a_cluster_selects_the_batch_of_the_local_round(campaign_factory, tmp_path, cluster):
    here = campaign_factory(tmp_path / "here", compute={"workers": 1})
    there = campaign_factory(tmp_path / "there", compute={"dask_address": cluster.scheduler.address})
    for camp in (here, there):
        with get_task_stream(cluster) as stream:
            for _ in api.run_rounds(camp, 2, simulate=True):
                pass
        ran = _ran_there(stream)
    assert sum(ran.values()) == 2 * 4  # 3 fold models and the full model a round, on the cluster
    for number in (1, 2):
        assert (here.round_dir(number) / "batch.csv").read_bytes() == (there.round_dir(number) / "batch.csv").read_bytes()
        pd.testing.assert_frame_equal(store.read_pred_probs(here, number), store.read_pred_probs(there, number))
    assert store.read_round_metrics(here, 2)["test_accuracy"] == store.read_round_metrics(there, 2)["test_accuracy"]
