"""Rounds end to end: Prefect flow, MLflow runs, DVC/git tags, rollback, cache, ingest."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from crowdloop import cli
from crowdloop.tasks import store, track, train, version

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def count_training(monkeypatch):
    """Counts calls of the training step's pure function (inside the Prefect task)."""
    calls = []
    real = train.train_and_predict

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_and_predict", counting)
    return calls


def _crowdloop(campaign, *args):
    return cli.main(["-C", str(campaign.root), *args])


def test_three_simulated_rounds_then_rollback_and_cached_rerun(tiny_campaign, count_training, capsys, round_runs):
    camp = tiny_campaign
    assert _crowdloop(camp, "round", "--simulate") == 0
    hash_1 = store.data_hash(camp)
    assert _crowdloop(camp, "round", "--simulate", "--rounds", "2") == 0
    assert len(count_training) == 3
    out = capsys.readouterr().out
    assert "round 1: test accuracy" in out and "round 2: test accuracy" in out

    # every round is an MLflow run nested under the campaign run, with its metrics
    runs = round_runs(camp)
    assert [r["round"] for r in runs] == [1, 2, 3]
    for run in runs:
        for metric in ("test_accuracy", "test_macro_f1", "annotations", "labeled_examples",
                       "mean_consensus_quality"):
            assert metric in run["metrics"]
    assert runs[1]["metrics"]["annotations"] > runs[0]["metrics"]["annotations"]
    metrics_2 = store.read_round_metrics(camp, 2)
    assert runs[1]["metrics"]["test_accuracy"] == pytest.approx(metrics_2["test_accuracy"])

    # git tags and the DVC-recorded data
    assert version.round_tags(camp) == ["round-000", "round-001", "round-002", "round-003"]
    batch_2 = (camp.round_dir(2) / "batch.csv").read_bytes()
    assert store.data_hash(camp) != hash_1

    # after rounds 1-3, rollback 1 restores data/ hash-identical to round 1, and says what it dropped
    stored = len(store.read_annotations(camp))
    capsys.readouterr()
    assert _crowdloop(camp, "rollback", "1") == 0
    assert store.data_hash(camp) == hash_1
    kept = len(store.read_annotations(camp))
    assert 0 < kept < stored
    assert (f"no longer in data/: {stored - kept} annotations stored after round 1 ({kept} remain); ingest their "
            "answer files again") in capsys.readouterr().out
    assert store.completed_rounds(camp) == [1]

    # re-running round 2 on unchanged inputs trains nothing and gives the same batch
    assert _crowdloop(camp, "round", "--simulate") == 0
    assert len(count_training) == 3
    assert (camp.round_dir(2) / "batch.csv").read_bytes() == batch_2


def test_rerun_after_a_crash_reuses_the_trained_step(tiny_campaign, count_training, monkeypatch):
    camp = tiny_campaign
    before = store.data_hash(camp)

    def broken(*args, **kwargs):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(track, "log_round", broken)
    with pytest.raises(Exception):
        _crowdloop(camp, "round", "--simulate")
    assert len(count_training) == 1
    assert version.round_tags(camp) == ["round-000"]  # nothing committed
    assert store.data_hash(camp) == before  # the failed round left data/ as it was
    assert not camp.metrics_file.exists()  # nor its metrics.json (round 0 has none)
    monkeypatch.undo()  # tracking works again (also undoes the counter)

    calls = []
    real = train.train_and_predict
    monkeypatch.setattr(train, "train_and_predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert _crowdloop(camp, "round", "--simulate") == 0
    assert calls == []
    assert version.round_tags(camp) == ["round-000", "round-001"]
    assert store.data_hash(camp) != before


def test_a_rerun_of_an_unchanged_round_reads_its_plan_back_without_cleanlab(tiny_campaign):
    """The plan is stored under the round's inputs and code: re-running the round after a rollback
    reads it back (the same batch, the same signal line) in a process that never imports cleanlab
    or scikit-learn; with a setting changed, the round plans again."""
    camp = tiny_campaign
    planned = _command_process(camp, "round", "--simulate", modules=("sklearn",))
    assert planned.stdout.split()[-3:] == ["exit", "0", "True"], planned.stderr[-3000:]  # it trained
    batch = (camp.round_dir(1) / "batch.csv").read_bytes()
    signal_line = next(line for line in planned.stderr.splitlines() if "out-of-sample balanced accuracy" in line)
    assert "plan read back" not in planned.stderr

    assert _crowdloop(camp, "rollback", "0") == 0
    again = _command_process(camp, "round", "--simulate", modules=("cleanlab", "sklearn"))
    assert again.stdout.split()[-4:] == ["exit", "0", "False", "False"], again.stderr[-3000:]
    assert "plan read back" in again.stderr
    assert signal_line.split(maxsplit=1)[1] in again.stderr  # the same line, without its time
    assert (camp.round_dir(1) / "batch.csv").read_bytes() == batch

    assert _crowdloop(camp, "rollback", "0") == 0
    params = yaml.safe_load(camp.params_file.read_text())
    params["select"]["batch_size"] = 5
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    changed = _command_process(camp, "round", "--simulate")
    assert changed.stdout.split()[-4:-2] == ["exit", "0"], changed.stderr[-3000:]
    assert "plan read back" not in changed.stderr
    assert len(pd.read_csv(camp.round_dir(1) / "batch.csv")) == 5


def test_round_writes_batch_and_ingest_adds_exactly_its_rows(tiny_campaign, tmp_path, capsys):
    camp = tiny_campaign
    assert _crowdloop(camp, "round") == 0
    batch = store.read_batch(camp, 1)
    assert list(batch.columns[:3]) == ["example_id", "text", "suggested_annotator"]
    assert 0 < len(batch) <= 8

    # a second round without answers is refused, with what to do
    assert _crowdloop(camp, "round") == 2
    assert "has no answers yet" in capsys.readouterr().err

    before = store.read_annotations(camp)
    answers = batch.assign(label="billing")
    answers.loc[answers.index[-1], "label"] = ""  # one request not answered yet
    path = tmp_path / "answers.csv"
    answers.to_csv(path, index=False)
    assert _crowdloop(camp, "ingest", str(path)) == 0
    after = store.read_annotations(camp)
    assert len(after) == len(before) + len(batch) - 1
    added = after.iloc[len(before):]
    assert set(added["round"]) == {1}
    assert list(added["example_id"]) == list(batch["example_id"][:-1])

    # the same file twice adds nothing
    h = store.data_hash(camp)
    assert _crowdloop(camp, "ingest", str(path)) == 0
    assert store.data_hash(camp) == h
    log = subprocess.run(["git", "log", "--oneline"], cwd=camp.root, capture_output=True, text=True).stdout
    assert "Ingest" in log


BAD_FILES = {
    "unknown_id.csv": ("example_id,annotator_id,label\n{ok},a01,billing\nnope,a01,billing\n", 3, "nope"),
    "bad_label.csv": ("example_id,annotator_id,label\n{ok},a01,refund\n", 2, "refund"),
    "no_label.csv": ("example_id,annotator_id\n{ok},a01\n", 1, "label"),
    "garbage.csv": (None, None, "garbage.csv"),
    "bad.jsonl": ('{{"example_id": "{ok}", "annotator_id": "a01", "label": "billing"}}\n{{oops\n', 2, "bad.jsonl"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_answer_files_fail_with_file_and_line_and_change_nothing(tiny_campaign, tmp_path, capsys, name):
    camp = tiny_campaign
    text, line, word = BAD_FILES[name]
    examples = store.read_examples(camp)
    stored = store.read_annotations(camp)
    ok = examples.loc[(examples["split"] == "pool") & ~examples["example_id"].isin(
        stored.loc[stored["annotator_id"] == "a01", "example_id"]), "example_id"].iloc[0]
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe binary")
    else:
        path.write_text(text.format(ok=ok))
    before = store.data_hash(camp)
    head = version.head(camp)
    assert _crowdloop(camp, "ingest", str(path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err and word in err
    if line is not None:
        assert f":{line}" in err or f"line {line}" in err
    assert store.data_hash(camp) == before
    assert version.head(camp) == head


def test_ingest_takes_several_files_in_turn_and_stops_at_a_bad_one(tiny_campaign, tmp_path, capsys):
    camp = tiny_campaign
    pool = store.read_examples(camp).query("split == 'pool'")["example_id"].tolist()
    files = {}
    for name, rows in (("one.csv", [(pool[0], "n1", "billing")]), ("bad.csv", [(pool[1], "n1", "refund")]),
                       ("two.csv", [(pool[2], "n2", "billing")])):
        files[name] = tmp_path / name
        pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"]).to_csv(files[name], index=False)
    before = len(store.read_annotations(camp))
    assert _crowdloop(camp, "ingest", *(str(files[n]) for n in ("one.csv", "bad.csv", "two.csv"))) == 2
    out, err = capsys.readouterr()
    assert "one.csv: 1 new annotation stored" in out
    assert f"Ingested before it: {files['one.csv']}; fix it, then run `crowdloop ingest {files['bad.csv']} " \
           f"{files['two.csv']}`." in err
    stored = store.read_annotations(camp)
    assert len(stored) == before + 1 and stored["annotator_id"].iloc[-1] == "n1"  # one.csv only, committed
    assert version.dirty(camp) == []
    assert _crowdloop(camp, "ingest", str(files["two.csv"]), str(files["one.csv"])) == 0
    assert len(store.read_annotations(camp)) == before + 2  # two.csv new, one.csv already stored


def test_a_round_with_a_section_missing_from_params_yaml_is_refused_before_training(tiny_campaign, capsys,
                                                                                    count_training):
    camp = tiny_campaign
    params = yaml.safe_load(camp.params_file.read_text())
    del params["routing"]
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    before = store.data_hash(camp)
    assert _crowdloop(camp, "round") == 2
    assert "1 section missing (routing); DVC records each round's settings" in capsys.readouterr().err
    assert count_training == [] and store.data_hash(camp) == before
    params["routing"] = {}  # empty: the template's values
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    assert _crowdloop(camp, "round") == 0


def test_status_shows_rounds_and_what_is_waiting(tiny_campaign, capsys, monkeypatch):
    camp = tiny_campaign
    assert _crowdloop(camp, "status") == 0
    assert "no round has run yet" in capsys.readouterr().out
    monkeypatch.chdir(camp.data)  # without -C, from a folder inside the campaign
    assert cli.main(["status"]) == 0
    assert f"({camp.root.resolve()})" in capsys.readouterr().out
    assert _crowdloop(camp, "round") == 0
    capsys.readouterr()
    assert _crowdloop(camp, "status") == 0
    out = capsys.readouterr().out
    assert "test acc" in out and "waiting:" in out
    metrics = json.loads(camp.metrics_file.read_text())
    assert f"{metrics['test_accuracy']:.3f}" in out


def test_the_command_logs_its_rounds_from_the_mlflow_helper_process(tiny_campaign, round_runs):
    """The `crowdloop` process itself (own_process, as `entry` runs it) leaves MLflow and
    matplotlib to its helper process: the runs, their learning curve, lineage tags and the
    champion are as from an in-process round."""
    from mlflow.tracking import MlflowClient

    camp = tiny_campaign
    done = _command_process(camp, "round", "--simulate", "--rounds", "2")
    assert done.stdout.split()[-4:] == ["exit", "0", "False", "False"], done.stderr[-3000:]
    runs = round_runs(camp)
    assert [r["round"] for r in runs] == [1, 2]
    client = MlflowClient(track.tracking_uri(camp.mlruns), registry_uri=track.tracking_uri(camp.mlruns))
    for run in runs:
        names = {a.path for a in client.list_artifacts(run["run_id"])}
        assert {"learning_curve.png", "batch.csv", "model"} <= names
        assert run["tags"]["crowdloop.git_commit"]  # publish's lineage tags, set from the helper too
    assert client.get_model_version_by_alias("camp", track.CHAMPION).run_id in {r["run_id"] for r in runs}


def test_an_error_in_the_mlflow_helper_undoes_the_round(campaign_factory, tmp_path):
    """The helper's error (here: a tracking store it cannot create) reaches the round, which
    leaves data/ as it was and commits nothing."""
    camp = campaign_factory(tmp_path / "camp", tracking={"uri": "sqlite:////proc/no-such/mlflow.db"})
    before = store.data_hash(camp)
    done = _command_process(camp, "round", "--simulate")
    assert "exit 0" not in done.stdout and "/proc/no-such" in done.stderr
    assert "in the MLflow helper process" in done.stderr  # raised there, re-raised here
    assert version.round_tags(camp) == ["round-000"]
    assert store.data_hash(camp) == before


def _command_process(camp, *args, modules=("mlflow", "matplotlib")) -> subprocess.CompletedProcess:
    """``crowdloop -C camp *args`` as the command's own process runs it (``own_process``), in a
    fresh interpreter; stdout ends with ``exit CODE`` and whether it imported each of ``modules``."""
    command = ("import sys\n"
               "from crowdloop import cli\n"
               f"code = cli.main(['-C', {str(camp.root)!r}, *{list(args)!r}], own_process=True)\n"
               f"print('exit', code, *(m in sys.modules for m in {modules!r}))\n")
    return subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, timeout=900)


def test_a_rounds_own_lines_are_in_its_prefect_flow_runs_logs(tiny_campaign):
    """The Prefect UI's page of a round (a scheduled one above all) showed only Prefect's lines: its
    result, where its folds went and why it chose its strategy were only on the command's stderr."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    assert _crowdloop(tiny_campaign, "round", "--simulate") == 0
    flow_run_id = UUID(store.read_lineage(tiny_campaign, 1)["prefect_flow_run_id"])
    APILogHandler().flush()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    messages = [entry.message for entry in logs]
    assert any(m.startswith("round 1: ") and " annotations on " in m for m in messages), messages
    assert any("score.strategy" in m for m in messages), messages  # logged inside the plan's task run
