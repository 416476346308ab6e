"""A campaign copied elsewhere (`git clone`, another directory name or depth): its name, pull, verify, rollback."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess

import pytest
import yaml

from crowdloop import api, cli, history_table
from crowdloop import campaign as campaign_mod
from crowdloop.tasks import config, demo, lineage, store, track, version


def _refused(capsys, args: list[str], *words: str) -> str:
    """Run ``crowdloop ARGS``: it exits 2 with one error line naming every one of ``words``."""
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2 and all(word in err for word in words) and "Traceback" not in err, err
    return err


def _init(root, **params):
    data = demo.make_demo(seed=1, n_pool=20, n_test=6, n_initial=6, n_annotators=4, answers_per_example=2)
    return campaign_mod.init_campaign(root, data.examples, classes=demo.DEMO_CLASSES, initial=data.initial,
                                      params=params or None)


def _clone(campaign, target):
    subprocess.run(["git", "clone", "-q", str(campaign.root), str(target)], check=True)
    return store.Campaign(target)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An MLflow sqlite store with its tables made and nothing in it: a copy saves each test the
    2-3 s MLflow takes to create them."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def pushed(tmp_path, empty_store):
    """Campaign ``demo6`` (remote ../crowdloop-remote, a shared sqlite tracking store) with a round 1
    whose MLflow run is logged and whose data is pushed, as a round leaves them."""
    (tmp_path / "mlflow").mkdir()
    shutil.copyfile(empty_store, tmp_path / "mlflow" / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    camp = _init(tmp_path / "demo6", tracking={"uri": uri})
    run_id = track.log_round(camp, 1, name="demo6", params={}, metrics={"test_accuracy": 0.5}, artifacts=[], uri=uri)
    folder = camp.round_dir(1)
    folder.mkdir(parents=True)
    (folder / "batch.csv").write_text("example_id,suggested_annotator\n")
    (folder / "metrics.json").write_text(json.dumps({"batch_size": 0}))
    store.write_lineage(camp, 1, lineage.round_ids(run_id, flow_run_id=None, uri=uri))
    version.commit(camp, "Round 1: test", tag=version.round_tag(1))
    version.push(camp, "../crowdloop-remote", all_tags=True)
    return camp, run_id, uri


def test_init_records_the_directory_s_name_which_a_clone_keeps(tmp_path):
    camp = _init(tmp_path / "2024")
    assert yaml.safe_load(camp.params_file.read_text())["name"] == "2024"  # quoted: a name, not a number
    clone = _clone(camp, tmp_path / "demo-copy2")
    assert lineage.campaign_name(clone, config.load(clone.params_file).name) == "2024"
    assert lineage.campaign_name(clone, None) == "demo-copy2"  # a campaign made before `name`
    assert _init(tmp_path / "named", name="support").params_file.read_text().count("name: support") == 1


def test_a_directory_name_mlflow_refuses_is_refused_at_init(tmp_path):
    with pytest.raises(api.CrowdloopError, match="choose another directory"):
        _init(tmp_path / "a:b")
    assert not (tmp_path / "a:b").exists()


def test_a_clone_with_another_directory_name_verifies_sound_after_pull(pushed, tmp_path, capsys):
    camp, run_id, uri = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    assert cli.main(["-C", str(clone.root), "pull"]) == 0
    assert cli.main(["-C", str(clone.root), "verify"]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    # round 0's data is on the remote only: said as what it is, with the command that fetches it
    assert f"verify: round-000: data on the DVC remote {tmp_path / 'crowdloop-remote'} (checked there)" in out
    assert "`crowdloop rollback N` fetches" in out and "sound" in out


def test_a_campaign_made_before_name_finds_its_runs_by_id_and_says_which_name_to_set(pushed, tmp_path):
    camp, run_id, uri = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    clone.params_file.write_text(clone.params_file.read_text().replace("name: demo6", "name: null"))
    (finding,) = api.verify(clone).findings
    assert finding.startswith("round 1: its MLflow run is in the experiment 'demo6', not in 'demo-copy2'")
    assert "set `name: demo6` in params.yaml" in finding


def test_verify_in_a_clone_whose_remote_it_cannot_look_into_says_so_and_how_to_fetch(pushed, tmp_path):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    clone.params_file.write_text(clone.params_file.read_text().replace("url: ../crowdloop-remote",
                                                                       "url: s3://bucket/demo6"))
    verified = api.verify(clone)
    assert verified.findings == []
    assert verified.notes == ["round-000: data not in this copy's DVC cache, and the DVC remote s3://bucket/demo6 is "
                              "not looked into from here; `dvc fetch -r crowdloop --all-tags` fetches every round's "
                              "for verify to check."]
    clone.params_file.write_text(clone.params_file.read_text().replace("url: s3://bucket/demo6", "url: null"))
    (finding,) = api.verify(clone).findings
    assert finding.startswith("round-000: its data is not in the DVC cache, and params.yaml names no DVC remote")


def test_pull_from_a_relative_remote_that_is_not_there_names_the_folder_and_what_to_do(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    deeper = _clone(camp, tmp_path / "elsewhere" / "demo6")  # ../crowdloop-remote is elsewhere/crowdloop-remote
    missing = tmp_path / "elsewhere" / "crowdloop-remote"
    _refused(capsys, ["-C", str(deeper.root), "pull"], f"the DVC remote {missing} does not exist",
             "'../crowdloop-remote'", "point remote.url at it")
    assert not missing.exists()  # a pull makes no empty remote
    missing.mkdir()
    _refused(capsys, ["-C", str(deeper.root), "pull"], f"the DVC remote {missing} (remote.url '../crowdloop-remote') "
             "holds none of data/ at the checked-out commit")
    _refused(capsys, ["-C", str(deeper.root), "rollback", "0"], f"the DVC remote {missing}", "holds none of data/")
    deeper.params_file.write_text(deeper.params_file.read_text().replace("../crowdloop-remote",
                                                                         "../../crowdloop-remote"))
    assert cli.main(["-C", str(deeper.root), "pull"]) == 0
    assert store.data_hash(deeper) == store.data_hash(camp)


@pytest.mark.parametrize("command", [["status"], ["verify"], ["history"], ["round"], ["export"]])
def test_every_command_in_a_clone_before_pull_says_to_pull(tmp_path, capsys, command):
    clone = _clone(_init(tmp_path / "demo6"), tmp_path / "demo-copy2")
    _refused(capsys, ["-C", str(clone.root), *command], "data/ is not here", "run `crowdloop pull`")


def test_push_from_a_clone_lacking_a_round_s_data_that_the_remote_lacks_too_says_so(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)  # round 1's data; round 0's listing stays on the remote only
    md5 = version.data_md5(clone, "round-000")
    version.stored_object(clone, md5, tmp_path / "crowdloop-remote").unlink()  # the remote loses it
    assert version.stored_object(clone, md5) is None  # and this copy never had it
    err = _refused(capsys, ["-C", str(clone.root), "push"], f"the DVC remote {tmp_path / 'crowdloop-remote'} still "
                   "lacks data of 1 round tag (round-000)", "round-000's listing of data/",
                   "run `crowdloop push` in the copy")
    assert "every round's data/ is in the DVC remote" not in capsys.readouterr().out + err
    assert any(f.startswith("round-000: its data is neither") for f in api.verify(clone).findings)  # verify agrees
    assert cli.main(["-C", str(camp.root), "push"]) == 0  # the copy that has it pushes it
    assert cli.main(["-C", str(clone.root), "push"]) == 0


def test_verify_names_every_round_tag_whose_data_lacks_a_file_the_rounds_share(pushed, tmp_path):
    camp, _, _ = pushed
    md5 = version.read_listing(camp, version.data_md5(camp, "round-000"))["examples.parquet"]
    assert version.read_listing(camp, version.data_md5(camp, "round-001"))["examples.parquet"] == md5  # shared
    version.stored_object(camp, md5).unlink()
    version.stored_object(camp, md5, tmp_path / "crowdloop-remote").unlink()
    findings = api.verify(camp).findings
    for tag in ("round-000", "round-001"):  # a rollback to either would fail
        assert f"{tag}: 1 file of its data is neither in the DVC cache nor on the DVC remote" in "\n".join(findings)
    assert len(findings) == 2, findings


def test_rollback_and_pull_print_the_dvc_hash_that_history_shows(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    (row,) = history_table.rows(camp)
    assert cli.main(["-C", str(clone.root), "pull"]) == 0
    assert f"(DVC hash {row['dvc_md5'][:12]})" in capsys.readouterr().out  # was a hash of crowdloop's own
    assert cli.main(["-C", str(camp.root), "rollback", "1"]) == 0  # round 1's already: nothing to do
    assert f"DVC hash {row['dvc_md5'][:12]}) and no later round has a tag" in capsys.readouterr().out
    assert cli.main(["-C", str(clone.root), "rollback", "0"]) == 0
    assert f"data/ restored to round 0 (DVC hash {version.data_md5(clone, 'round-000')[:12]}, " in \
        capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("dvc_s3") is not None, reason="needs an environment without dvc-s3")
def test_a_remote_dvc_cannot_load_is_refused_before_it_breaks_dvc_for_every_later_command(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    local = clone.params_file.read_text()
    clone.params_file.write_text(local.replace("url: ../crowdloop-remote", "url: s3://bucket/demo6"))
    _refused(capsys, ["-C", str(clone.root), "rollback", "0"], "s3://bucket/demo6", "pip install 'dvc[s3]'")
    assert "s3://" not in (clone.root / ".dvc" / "config.local").read_text()  # DVC's config stays loadable
    clone.params_file.write_text(local)  # the user points remote.url back at the folder
    assert api.verify(clone).recovered is None  # was: every command failed, retrying the rollback on s3
    assert cli.main(["-C", str(clone.root), "rollback", "0"]) == 0


def test_an_interrupted_rollback_whose_remote_is_gone_is_undone_not_retried_by_every_command(pushed, tmp_path,
                                                                                             monkeypatch, capsys):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    head, listing = version.head(clone), store.data_md5s(clone)
    real = version.dvc

    def ctrl_c_mid_fetch(*commands, **kwargs):
        if any(c[0] == "fetch" for c in commands):
            raise KeyboardInterrupt  # what Ctrl-C does to `crowdloop rollback` while it fetches
        return real(*commands, **kwargs)

    monkeypatch.setattr(version, "dvc", ctrl_c_mid_fetch)
    with pytest.raises(KeyboardInterrupt):
        api.rollback(clone, 0)
    monkeypatch.setattr(version, "dvc", real)
    (tmp_path / "crowdloop-remote").rename(tmp_path / "moved")  # the remote is not reachable now
    verified = api.verify(clone)  # was: VersionError on this and every later command
    assert "interrupted rollback to round 0 that cannot be finished now" in verified.recovered
    assert "run it again" in verified.recovered
    assert version.head(clone) == head and store.data_md5s(clone) == listing  # data/ as the last commit has it
    (tmp_path / "moved").rename(tmp_path / "crowdloop-remote")
    assert cli.main(["-C", str(clone.root), "rollback", "0"]) == 0


def test_a_rollback_that_failed_and_could_not_clean_up_is_undone_by_the_next_command_not_finished(pushed, tmp_path,
                                                                                                  monkeypatch):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    head, real_dvc, real_restore = version.head(clone), version.dvc, version.restore_head

    def unreachable(*commands, **kwargs):
        if any(c[0] == "fetch" for c in commands):
            raise version.VersionError("the remote did not answer")
        return real_dvc(*commands, **kwargs)

    def clean_up_fails(campaign):
        raise version.VersionError("the clean-up failed too")

    monkeypatch.setattr(version, "dvc", unreachable)
    monkeypatch.setattr(version, "restore_head", clean_up_fails)
    with pytest.raises(version.VersionError, match="did not answer"):
        api.rollback(clone, 0)  # the user saw it fail
    monkeypatch.setattr(version, "dvc", real_dvc)
    monkeypatch.setattr(version, "restore_head", real_restore)
    verified = api.verify(clone)
    assert verified.recovered == "put data/ back as the last commit has it after a rollback to round 0 that failed"
    assert version.head(clone) == head  # not rolled back behind the user's back


def test_verify_in_a_clone_says_where_it_looked_for_the_runs_of_the_campaign_s_own_store(tmp_path):
    camp = _init(tmp_path / "demo7")  # no tracking.uri: runs in the campaign's mlruns/, which git ignores
    run_id = track.log_round(camp, 1, name="demo7", params={}, metrics={}, artifacts=[])
    camp.round_dir(1).mkdir(parents=True)
    (camp.round_dir(1) / "batch.csv").write_text("example_id,suggested_annotator\n")
    (camp.round_dir(1) / "metrics.json").write_text(json.dumps({"batch_size": 0}))
    store.write_lineage(camp, 1, lineage.round_ids(run_id, flow_run_id=None, uri=None))
    version.commit(camp, "Round 1: test", tag=version.round_tag(1))
    version.push(camp, "../crowdloop-remote", all_tags=True)
    assert api.verify(camp).findings == []
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)
    (finding,) = api.verify(clone).findings  # was: "MLflow run ... is missing, not FINISHED."
    assert finding == (f"round 1: MLflow run {run_id} is not in the tracking store sqlite:///{clone.root.resolve()}/"
                       "mlruns/mlflow.db; mlruns/ is not part of a copy of the campaign: set tracking.uri to the store "
                       "the runs are in.")
    assert not (clone.root / "mlruns").exists()  # a check reads: it made an empty store there


def test_pull_from_a_remote_folder_that_is_not_there_says_so_even_when_the_cache_needs_nothing(pushed, tmp_path,
                                                                                            capsys):
    camp, _, _ = pushed
    camp.params_file.write_text(camp.params_file.read_text().replace("url: ../crowdloop-remote", "url: ../moved"))
    before = store.data_md5s(camp)
    err = _refused(capsys, ["-C", str(camp.root), "pull"], f"the DVC remote {tmp_path / 'moved'} does not exist",
                   "point remote.url at it")
    assert "checked out from" not in capsys.readouterr().out + err  # was: "data/ checked out from .../moved"
    assert not (tmp_path / "moved").exists() and store.data_md5s(camp) == before


def test_push_to_a_remote_it_cannot_look_into_names_the_rounds_this_copy_could_not_send(pushed, tmp_path, capsys,
                                                                                      monkeypatch):
    camp, _, _ = pushed
    clone = _clone(camp, tmp_path / "demo-copy2")
    api.pull(clone)  # round 1's data; round 0's listing is on the remote only
    # what a push to s3 checks once DVC is done
    assert version.remote.check_pushed(clone, "s3://bucket/demo6") == ["round-000"]
    assert version.remote.check_pushed(camp, "s3://bucket/demo6") == []  # the copy that has every round's data
    monkeypatch.setattr(api, "push", lambda campaign: api.Pushed("s3://bucket/demo6", ("round-000",)))
    assert cli.main(["-C", str(clone.root), "push"]) == 0
    out = capsys.readouterr().out  # was: "every round's data/ is in the DVC remote", under a warning saying not
    assert out.startswith("pushed what this copy has to the DVC remote s3://bucket/demo6; not from here: round-000,")
    assert "every round's data/ is in" not in out


def test_a_file_url_remote_is_the_folder_it_names_not_a_folder_named_file_in_the_campaign(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    folder = tmp_path / "by url"
    camp.params_file.write_text(camp.params_file.read_text().replace(
        "url: ../crowdloop-remote", f"url: file://{folder.as_posix().replace(' ', '%20')}"))
    assert cli.main(["-C", str(camp.root), "push"]) == 0
    assert f"every round's data/ is in the DVC remote {folder}" in capsys.readouterr().out
    assert not (camp.root / "file:").exists()  # was: DVC's folder for file:///..., inside the campaign
    assert (folder / "files" / "md5").is_dir()
    clone = _clone(camp, tmp_path / "demo-copy2")
    clone.params_file.write_text(camp.params_file.read_text())
    (tmp_path / "crowdloop-remote").rename(tmp_path / "moved")  # the clone pulls from the URL's folder alone
    api.pull(clone)
    assert store.data_md5s(clone) == store.data_md5s(camp)
    camp.params_file.write_text(camp.params_file.read_text().replace("url: file://", "url: file://otherhost"))
    _refused(capsys, ["-C", str(camp.root), "push"], "a file:// URL names a folder on this machine")


def test_pull_puts_back_a_hand_edited_file_whose_recorded_copy_the_cache_lost(pushed, tmp_path, capsys):
    camp, _, _ = pushed
    batch = camp.round_dir(1) / "batch.csv"
    recorded = batch.read_bytes()
    version.stored_object(camp, version.data_listing(camp)["rounds/001/batch.csv"]).unlink()  # the cache lost it
    batch.write_text("example_id,suggested_annotator,label\nx1,a01,billing\n")  # filled in where it lies
    _refused(capsys, ["-C", str(camp.root), "push"], "data/rounds/001/batch.csv was changed by hand",
             "run `crowdloop pull`")
    assert cli.main(["-C", str(camp.root), "pull"]) == 0  # was: the same error, which says to run pull
    assert batch.read_bytes() == recorded
    (kept,) = (camp.root / version.EDITED).rglob("batch.csv")
    assert "x1,a01,billing" in kept.read_text()  # what was typed is kept
    assert api.verify(camp).findings == []


def test_verify_notes_answers_ingested_since_the_last_push_that_a_copy_could_not_pull_yet(pushed, tmp_path):
    camp, _, _ = pushed
    assert not [n for n in api.verify(camp).notes if "not all on the DVC remote" in n]
    pool = store.read_examples(camp).query("split == 'pool'")["example_id"].iloc[0]
    answers = tmp_path / "answers.csv"
    answers.write_text(f"example_id,annotator_id,label\n{pool},newcomer,{demo.DEMO_CLASSES[0]}\n")
    api.ingest(camp, answers)
    verified = api.verify(camp)
    (note,) = [n for n in verified.notes if "not all on the DVC remote" in n]
    assert f"the last commit's data/ is not all on the DVC remote {tmp_path / 'crowdloop-remote'} yet (data/" in note
    assert verified.findings == []  # nothing is wrong: the copy here has it all
    api.push(camp)
    assert not [n for n in api.verify(camp).notes if "not all on the DVC remote" in n]


def test_a_tracking_server_that_takes_no_connection_is_said_in_one_line_before_the_round():
    import socket

    from crowdloop.tasks.errors import CampaignError

    listening = socket.create_server(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    track.check_reachable(f"http://127.0.0.1:{port}")  # something listens: fine
    track.check_reachable("sqlite:///nowhere/mlflow.db")  # not a server: not checked
    listening.close()
    with pytest.raises(CampaignError, match=rf"the MLflow tracking server at http://127.0.0.1:{port} takes no "
                                            r"connection \(.*\); start it, or set tracking.uri"):
        track.check_reachable(f"http://127.0.0.1:{port}", timeout=2)
