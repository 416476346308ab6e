"""A campaign operated for real: a Prefect server, an MLflow server and `crowdloop deploy`.

The servers and the deploy process are started as subprocesses on free loopback
ports, each in its own process group, and stopped by that process id at teardown.
The deployment runs every 6 seconds: its first run makes round 1, the next ones
skip (nobody answered), then an answer file dropped into the inbox is ingested by
a scheduled run that makes round 2; MLflow's server then holds both round runs
and the registered champion.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crowdloop.tasks import lineage, lock, store, track

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A subprocess in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict | None = None):
        self.name, self.log = name, log_dir / f"{name}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(args, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})})

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.name} (exit {self.proc.poll()}) ---\n" + "\n".join(text[-lines:])

    def stop(self, first: int = signal.SIGTERM) -> None:
        """Signal the process group this test started (its id is the process id), then kill it."""
        for sig, grace in ((first, 20), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self.handle.close()


def _wait_for(condition, *, timeout: float, what: str, processes: list[Process]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.TimeoutException:  # a server busy with the runs under test answers late: ask again
            value = None
        if value:
            return value
        dead = [p for p in processes if p.proc.poll() is not None]
        if dead:
            break
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(p.tail() for p in processes))


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def servers(tmp_path):
    """Prefect and MLflow servers on free loopback ports: ``(prefect_api_url, mlflow_url, processes)``."""
    logs = tmp_path / "logs"
    logs.mkdir()
    p_port, m_port = _free_port(), _free_port()
    prefect = Process("prefect-server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                         "--port", str(p_port), "--no-ui", "--analytics-off"], logs,
                      env={"PREFECT_HOME": str(tmp_path / "prefect-server")})
    mlflow = Process("mlflow-server", [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(m_port),
                                       "--workers", "1",
                                       "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow-server.db'}",
                                       "--artifacts-destination", str(tmp_path / "mlflow-artifacts")], logs)
    started = [prefect, mlflow]
    try:
        api, tracking = f"http://127.0.0.1:{p_port}/api", f"http://127.0.0.1:{m_port}"
        _wait_for(lambda: _healthy(f"{api}/health") and _healthy(f"{tracking}/health"), timeout=180,
                  what="the Prefect and MLflow servers to answer", processes=started)
        yield api, tracking, started
    finally:
        for process in reversed(started):
            process.stop()


def _deployment(api: str, name: str) -> dict | None:
    """The deployment named ``name`` as the server describes it, or None."""
    found = httpx.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [name]}}},
                       timeout=10).json()
    return found[0] if found else None


def _runs_in(api: str, deployment: str, *states: str) -> list[dict]:
    """The flow runs of the deployment named ``deployment`` in one of ``states`` (state types)."""
    found = _deployment(api, deployment)
    if found is None:
        return []
    return httpx.post(f"{api}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"deployment_id": {"any_": [found["id"]]}, "state": {"type": {"any_": list(states)}}},
        "limit": 200}).json()


def _scheduled_runs(api: str, deployment: str) -> list[dict]:
    """Finished flow runs of the deployment named ``deployment``."""
    runs = _runs_in(api, deployment, "COMPLETED", "FAILED", "CRASHED")
    failed = [r for r in runs if r["state_type"] != "COMPLETED"]
    assert not failed, f"a scheduled run failed: {failed[0]['state_name']}: {failed[0]['state']['message']}"
    return runs


def test_deployed_campaign_runs_scheduled_rounds_from_the_inbox(servers, tmp_path, campaign_factory, round_runs,
                                                                 get_run):
    api, tracking, started = servers
    camp = campaign_factory(tmp_path / "camp", schedule={"interval_minutes": 0.1},
                            tracking={"uri": tracking})
    deploy = Process("deploy", [str(BIN / "crowdloop"), "-C", str(camp.root), "deploy"], tmp_path / "logs",
                     env={"PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "1",
                          "PREFECT_HOME": str(tmp_path / "prefect-client")})
    started.append(deploy)
    try:
        def states():
            return [r["state_name"] for r in _scheduled_runs(api, "camp")]

        # the first scheduled run makes round 1 (nothing to wait for); the next ones find no answers
        _wait_for(lambda: "Completed" in states() and "Skipped" in states(), timeout=600,
                  what="a scheduled round and a skipped run", processes=started)
        assert store.completed_rounds(camp) == [1]

        batch = store.read_batch(camp, 1)
        (tmp_path / "answers.csv").write_text(batch.assign(label="billing").to_csv(index=False))
        os.replace(tmp_path / "answers.csv", camp.root / "inbox" / "answers.csv")
        _wait_for(lambda: states().count("Completed") >= 2, timeout=600,
                  what="a scheduled run to ingest the answers and make round 2", processes=started)
    finally:
        deploy.stop(first=signal.SIGTERM)  # as a service manager stops it

    # SIGTERM ends `deploy` as it ends every crowdloop command: status 143, one line, the schedule paused
    output = deploy.log.read_text()
    assert deploy.proc.returncode == 143, deploy.tail()
    assert "(every 6 s)" in output and "stopped by SIGTERM" in output
    assert "Traceback" not in output and "never awaited" not in output
    assert _deployment(api, "camp")["paused"]
    assert store.completed_rounds(camp) == [1, 2]
    assert [p.name.endswith("-answers.csv") for p in (camp.root / "inbox" / "processed").iterdir()] == [True]
    ingested = store.read_annotations(camp).query("source == 'ingest:answers.csv'")
    assert len(ingested) == len(batch) and set(ingested["round"]) == {1}

    # round 2 ran as a subflow of a scheduled run of the deployment
    ids = store.read_lineage(camp, 2)
    child = httpx.get(f"{api}/flow_runs/{ids['prefect_flow_run_id']}", timeout=10).json()
    parent_task = httpx.get(f"{api}/task_runs/{child['parent_task_run_id']}", timeout=10).json()
    parent = httpx.get(f"{api}/flow_runs/{parent_task['flow_run_id']}", timeout=10).json()
    assert child["state_type"] == "COMPLETED" and parent["deployment_id"] is not None

    # the MLflow server holds both round runs with their metrics, lineage and the champion
    runs = round_runs(camp, uri=tracking)
    assert [r["round"] for r in runs] == [1, 2]
    assert all({"test_accuracy", "annotations", "mean_consensus_quality"} <= set(r["metrics"]) for r in runs)
    assert runs[1]["run_id"] == ids["mlflow_run_id"] and ids["mlflow_tracking_uri"] == tracking
    run = get_run(camp, ids["mlflow_run_id"], uri=tracking)
    assert run.data.tags[lineage.GIT_TAG_KEY] == "round-002" and lineage.GIT_COMMIT_KEY in run.data.tags
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias("camp", track.CHAMPION)
    best = max(runs, key=lambda r: r["metrics"]["test_accuracy"])
    assert champion.run_id == best["run_id"]
    assert "learning_curve.png" in {a.path for a in client.list_artifacts(ids["mlflow_run_id"])}
    assert not (camp.root / "mlruns" / "mlflow.db").exists()  # nothing went to the local store


def test_a_work_pools_worker_runs_the_scheduled_rounds_it_was_deployed_to(servers, tmp_path, campaign_factory):
    api, tracking, started = servers
    camp = campaign_factory(tmp_path / "camp", schedule={"interval_minutes": 0.1}, tracking={"uri": tracking})
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "prefect-client")}
    deploy = [str(BIN / "crowdloop"), "-C", str(camp.root), "deploy", "--work-pool", "rounds"]
    not_yet = subprocess.run([*deploy[:4], "--pause"], env=env, capture_output=True, text=True, timeout=300)
    assert not_yet.returncode == 2 and "has no deployment crowdloop-scheduled-round/camp" in not_yet.stderr
    refused = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "prefect work-pool create rounds --type process" in refused.stderr
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", "rounds", "--type", "process"], env=env,
                   check=True, capture_output=True, timeout=300)
    registered = subprocess.run(deploy, env=env, capture_output=True, text=True, timeout=300)
    assert registered.returncode == 0 and "prefect worker start --pool rounds" in registered.stdout
    worker = Process("worker", [str(BIN / "prefect"), "worker", "start", "--pool", "rounds"], tmp_path / "logs",
                     env={"PREFECT_API_URL": api, "PREFECT_HOME": str(tmp_path / "prefect-client"),
                          "PREFECT_WORKER_QUERY_SECONDS": "5"})
    started.append(worker)

    def waits() -> int:
        return worker.log.read_text(errors="replace").count("waiting for the campaign")

    # one round at a time: while the campaign is busy, the first run waits for it and the runs that
    # come due meanwhile are cancelled by the server, so no second process starts only to wait
    with lock.hold(camp, "the test", timeout=0):
        _wait_for(waits, timeout=300, what="a scheduled run to wait for the campaign", processes=started)
        cancelled = _wait_for(lambda: _runs_in(api, "camp", "CANCELLED"), timeout=120,
                              what="a run due meanwhile to be cancelled", processes=started)
    assert {r["state"]["message"] for r in cancelled} == {"Deployment concurrency limit reached."}
    # a slow machine makes the server answer late (and log SQLite's "database is locked"): wait long
    _wait_for(lambda: "Completed" in [r["state_name"] for r in _scheduled_runs(api, "camp")], timeout=600,
              what="the pool's worker to run a scheduled round", processes=started)
    assert waits() == 1
    assert store.completed_rounds(camp) == [1]
    # the round's own line, which went nowhere in the flow run's process the worker started
    _wait_for(lambda: "round 1: " in worker.log.read_text(errors="replace"), timeout=30,
              what="the round's line in the worker's output", processes=started)

    # one command pauses the schedule (Prefect's own takes two: the schedule's id, then the pause)
    paused = subprocess.run([*deploy[:4], "--pause"], env=env, capture_output=True, text=True, timeout=300)
    assert paused.returncode == 0 and "scheduled rounds of camp paused" in paused.stdout
    assert _deployment(api, "camp")["paused"] and not _runs_in(api, "camp", "SCHEDULED")
    resumed = subprocess.run([*deploy[:4], "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0 and "scheduled rounds of camp resumed" in resumed.stdout
    assert not _deployment(api, "camp")["paused"]
    subprocess.run([*deploy[:4], "--pause"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run(deploy, env=env, check=True, capture_output=True, timeout=300)  # deploying again resumes too
    assert not _deployment(api, "camp")["paused"]
    # the resumed schedule may have started a round by now; SIGTERM would wait out its 20 s grace for it
    worker.stop(signal.SIGKILL)
