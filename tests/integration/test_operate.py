"""Operating a campaign: scheduled rounds fed by the inbox, lineage ids, rollback from a clone.

One campaign is driven through five scheduled runs (in-process, Prefect's local
server, MLflow's sqlite store, a local DVC remote); the tests then check what
each run did and that every id ``crowdloop history`` shows resolves.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
import yaml

from crowdloop import cli, history_table
from crowdloop.flows.scheduled import scheduled_round
from crowdloop.tasks import files, lineage, store, track, version

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _drop(campaign, name: str, text: str) -> None:
    """Put a file into the inbox the way a labeling tool should: written aside, then moved in."""
    inbox = campaign.root / "inbox"
    inbox.mkdir(exist_ok=True)
    (campaign.root / name).write_text(text)
    os.replace(campaign.root / name, inbox / name)


def _answers(campaign, number: int, rows: slice) -> str:
    batch = store.read_batch(campaign, number).iloc[rows]
    return batch.assign(label="billing").loc[:, ["example_id", "suggested_annotator", "label"]].to_csv(index=False)


@pytest.fixture(scope="module")
def operated(tmp_path_factory, campaign_factory):
    camp = campaign_factory(tmp_path_factory.mktemp("operate") / "camp", schedule={"min_answered": 0.5})
    runs = {"first": scheduled_round(str(camp.root), return_state=True)}
    facts = {"hash_1": store.data_hash(camp)}
    runs["nothing_back"] = scheduled_round(str(camp.root), return_state=True)
    known = store.read_batch(camp, 1)["example_id"].iloc[0]
    _drop(camp, "bad.csv", f"example_id,annotator_id,label\n{known},a01,billing\nnope,a01,billing\n")
    runs["bad_file"] = scheduled_round(str(camp.root), return_state=True)
    facts["hash_after_bad"] = store.data_hash(camp)
    facts["annotations_1"] = len(store.read_annotations(camp))
    _drop(camp, "part1.csv", _answers(camp, 1, slice(0, 3)))      # 3 of 8: below half
    runs["too_few"] = scheduled_round(str(camp.root), return_state=True)
    _drop(camp, "part2.csv", _answers(camp, 1, slice(3, 6)))      # 6 of 8: a round
    runs["enough"] = scheduled_round(str(camp.root), return_state=True)
    _drop(camp, "part2-again.csv", _answers(camp, 1, slice(3, 6)))  # the same answers twice
    runs["again"] = scheduled_round(str(camp.root), return_state=True)
    return camp, runs, facts


def test_scheduled_rounds_run_when_enough_answers_are_back_and_skip_otherwise(operated):
    camp, runs, facts = operated
    assert {k: s.name for k, s in runs.items()} == {
        "first": "Completed", "nothing_back": "Skipped", "bad_file": "Skipped", "too_few": "Skipped",
        "enough": "Completed", "again": "Skipped"}
    assert all(s.is_completed() for s in runs.values())  # a skip is a clean end, not a failure
    assert runs["first"].result()["round"] == 1 and runs["enough"].result()["round"] == 2
    assert "0 of 8 answers" in runs["nothing_back"].message
    assert "3 of 8 answers" in runs["too_few"].message
    assert runs["again"].result() | {"reason": None} == {
        "skipped": True, "ingested": 0, "reason": None, "rejected": {}, "labelstudio": None,
        "files": runs["again"].result()["files"]}
    assert version.round_tags(camp) == ["round-000", "round-001", "round-002"]


def test_inbox_files_are_stored_once_and_a_bad_file_is_rejected_with_its_error(operated):
    camp, runs, facts = operated
    assert facts["hash_after_bad"] == facts["hash_1"]  # the bad file stored nothing
    rejected = camp.root / "inbox" / "rejected"
    (error,) = rejected.glob("*bad.csv.error.txt")
    assert "bad.csv:3" in error.read_text() and "nope" in error.read_text()
    processed = {p.name.split("-", 1)[1] for p in (camp.root / "inbox" / "processed").iterdir()}
    assert processed == {"part1.csv", "part2.csv", "part2-again.csv"}
    assert not [p for p in (camp.root / "inbox").iterdir() if p.is_file()]
    annotations = store.read_annotations(camp)
    added = annotations.iloc[facts["annotations_1"]:]
    assert len(added) == 6 and set(added["round"]) == {1}
    assert list(added["example_id"]) == list(store.read_batch(camp, 1)["example_id"].iloc[:6])
    assert runs["again"].result()["ingested"] == 0


def test_history_ids_resolve_in_git_dvc_and_mlflow(operated, capsys, get_run):
    camp, runs, facts = operated
    rows = history_table.rows(camp)
    assert [r["round"] for r in rows] == [1, 2]
    cache = camp.root / ".dvc" / "cache" / "files" / "md5"
    for row in rows:
        n = row["round"]
        assert row["git_commit"] == version.commit_of(camp, f"round-{n:03d}")
        # the DVC hash is the one recorded at the tag, and its directory listing holds the
        # round's files with the bytes they have now (round folders are never rewritten)
        assert row["dvc_md5"] == version.data_md5(camp, f"round-{n:03d}")
        listing = json.loads((cache / row["dvc_md5"][:2] / row["dvc_md5"][2:]).read_text())
        md5 = {entry["relpath"]: entry["md5"] for entry in listing}
        metrics_file = camp.round_dir(n) / "metrics.json"
        assert md5[f"rounds/{n:03d}/metrics.json"] == hashlib.md5(metrics_file.read_bytes()).hexdigest()
        run = get_run(camp, row["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.tags[lineage.GIT_COMMIT_KEY] == row["git_commit"]
        assert run.data.tags[lineage.DVC_MD5_KEY] == row["dvc_md5"]
        assert run.data.tags[lineage.GIT_TAG_KEY] == row["tag"]
        assert run.data.tags[lineage.FLOW_RUN_KEY] == row["prefect_flow_run_id"]
        assert run.data.metrics["test_accuracy"] == pytest.approx(row["test_accuracy"])
        assert row["annotations"] == store.read_round_metrics(camp, n)["annotations"]
    assert cli.main(["-C", str(camp.root), "history"]) == 0
    out = capsys.readouterr().out
    for row in rows:
        assert row["mlflow_run_id"] in out and row["git_commit"][:12] in out and row["dvc_md5"][:12] in out


def test_flow_run_ids_resolve_in_prefect(operated):
    from uuid import UUID

    from prefect.client.orchestration import get_client

    camp, runs, facts = operated
    with get_client(sync_client=True) as client:
        for row in history_table.rows(camp):
            flow_run = client.read_flow_run(UUID(row["prefect_flow_run_id"]))
            assert flow_run.state.is_completed() and flow_run.parameters["campaign_dir"] == str(camp.root)


def test_champion_is_the_best_round_and_runs_hold_their_artifacts(operated):
    from mlflow.tracking import MlflowClient

    camp, runs, facts = operated
    client = MlflowClient(track.tracking_uri(camp.mlruns), registry_uri=track.tracking_uri(camp.mlruns))
    champion = client.get_model_version_by_alias("camp", track.CHAMPION)
    accuracies = {r["mlflow_run_id"]: r["test_accuracy"] for r in history_table.rows(camp)}
    assert accuracies[champion.run_id] == max(accuracies.values())
    for run_id in accuracies:
        names = {a.path for a in client.list_artifacts(run_id)}
        assert {"learning_curve.png", "batch.csv", "annotators.csv", "consensus.parquet", "model"} <= names
    assert (camp.round_dir(2) / store.LINEAGE_FILE).is_file()


def test_rollback_from_a_fresh_clone_pulls_from_the_remote(operated):
    camp, runs, facts = operated
    remote = yaml.safe_load(camp.params_file.read_text())["remote"]["url"]
    assert (camp.root / remote).resolve().is_dir()  # the rounds pushed there
    clone = camp.root.parent / "clone"  # beside the campaign: the relative remote path still holds
    subprocess.run(["git", "clone", "-q", str(camp.root), str(clone)], check=True)
    assert not (clone / "data").exists()
    assert cli.main(["-C", str(clone), "rollback", "1"]) == 0
    assert store.data_hash(store.Campaign(clone)) == facts["hash_1"]

    second = camp.root.parent / "clone-pulled"
    subprocess.run(["git", "clone", "-q", str(camp.root), str(second)], check=True)
    assert cli.main(["-C", str(second), "pull"]) == 0
    assert store.data_hash(store.Campaign(second)) == store.data_hash(camp)
    assert files.read_parquet(second / "data" / "examples.parquet").shape == store.read_examples(camp).shape


def test_a_scheduled_round_that_fails_on_a_user_error_says_it_once_without_a_traceback(tmp_path, campaign_factory):
    """As a worker runs it: a fresh process that calls the flow, no crowdloop command around it.
    Prefect's own lines gave the error four times, with two tracebacks (the round's subflow's and
    the scheduled run's)."""
    import sys

    camp = campaign_factory(tmp_path / "camp", model={"name": str(tmp_path / "no-such-model")})
    run = ("from crowdloop.flows.scheduled import scheduled_round\n"
           f"state = scheduled_round({str(camp.root)!r}, force=True, return_state=True)\n"
           "print('state:', state.type.value)\n")
    env = {**os.environ, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-c", run], env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "state: FAILED" in output, output
    assert output.count("no such folder") == 1 and "the scheduled round failed: model.name" in output, output
    assert "Traceback" not in output, output
    assert store.completed_rounds(camp) == []
