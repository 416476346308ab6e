"""Any crash is survivable, and writers take turns: commands SIGKILLed at named points, then raced.

Every command runs in a process of its own, forked from a warm process (``crashkit.py``)
and killed (SIGKILL) at one point: mid-training, mid-save, mid-MLflow logging, mid-DVC,
between git add and commit, between commit and tag, mid-publish, ... Then ``crowdloop
verify`` (which finishes or undoes what the killed command left) must find nothing, the
annotations must be exactly those committed, and the next command must work. The tests
share one campaign, in order: rounds, ingests, rollbacks, then three writers at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crowdloop import api
from crowdloop.tasks import config, store, version

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KILLED = -9
ROUND_POINTS = ["log:-fold out-of-sample", "log: annotations on ", "save:mid", "save:done", "track:mid", "track:done",
                "commit:mid-dvc", "commit:dvc-done", "commit:git-added", "commit:before-tag", "publish:mid",
                "publish:push"]
COMMITTED = {"commit:before-tag", "publish:mid", "publish:push"}  # the round's commit was made before the kill
INGEST_POINTS = ["ingest:before-part", "ingest:part-written", "commit:mid-dvc", "commit:git-added",
                 "ingest:committed"]
ROLLBACK_POINTS = ["rollback:files", "rollback:data", "rollback:commit"]


class Zygote:
    """The warm process of crashkit.py: ``run(jobs)`` forks one child per job, returns their exit statuses."""

    def __init__(self, home: Path, logs: Path):
        self.logs = logs
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("crashkit.py"))], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=Path(__file__).parents[2])
        assert "ready" in json.loads(self.proc.stdout.readline())

    def run(self, *jobs: dict) -> list[int]:
        for i, job in enumerate(jobs):
            job.setdefault("log", str(self.logs / f"{len(list(self.logs.iterdir()))}-{i}.log"))
        self.proc.stdin.write(json.dumps(list(jobs)) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def log(self, job: dict) -> str:
        return Path(job["log"]).read_text()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    warm = Zygote(tmp_path_factory.mktemp("prefect"), logs)
    yield warm
    warm.close()


@pytest.fixture(scope="module")
def camp(tmp_path_factory, campaign_factory):
    """The tiny campaign, with the quickest training (2 folds, one C, no n-grams): every kill point
    after a commit needs a new round, which trains."""
    fast = {"C_grid": [1.0], "inner_folds": 2, "ngrams": False, "pooling": "layers"}
    return campaign_factory(tmp_path_factory.mktemp("crash") / "camp", predict={"folds": 2}, model={"head": fast})


def _sound(camp) -> None:
    verified = api.verify(camp)
    assert verified.findings == [], verified


def _answers(camp, name: str, annotators: list[str], *, limit: int) -> Path:
    """An answer file of ``limit`` new answers: every pool example by each of ``annotators`` (each
    example keeps one class, so consensus still sees every class)."""
    pool = store.read_examples(camp).query("split == 'pool'")["example_id"]
    classes = config.load(camp.params_file).classes
    rows = [(e, a, classes[j % len(classes)]) for a in annotators for j, e in enumerate(pool)][:limit]
    path = camp.root.parent / name
    pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"]).to_csv(path, index=False)
    return path


def test_a_round_killed_at_any_of_12_points_leaves_a_sound_campaign_and_the_next_round_runs(zygote, camp):
    for point in ROUND_POINTS:
        before, tags = len(store.read_annotations(camp)), version.round_tags(camp)
        number = len(tags)
        args = ["-C", str(camp.root), "round", "--simulate", "--force"]
        assert zygote.run({"point": point, "args": args}) == [KILLED], point
        _sound(camp)
        after = store.read_annotations(camp)
        if point in COMMITTED:  # finished: tagged, and its simulated answers stored once
            assert version.round_tags(camp) == [*tags, version.round_tag(number)], point
            added = after.iloc[before:]
            assert len(added) > 0 and set(added["source"]) == {"simulated"} and set(added["round"]) == {number}
        else:  # undone: as if it never ran
            assert version.round_tags(camp) == tags and len(after) == before, point
            assert not camp.round_dir(number).exists(), point
    assert zygote.run({"args": ["-C", str(camp.root), "round", "--simulate", "--force"]}) == [0]
    _sound(camp)
    assert len(version.round_tags(camp)) == 1 + len(COMMITTED) + 1


def test_an_ingest_killed_at_5_points_stores_every_answer_once_under_its_own_name(zygote, camp):
    for i, point in enumerate(INGEST_POINTS):
        path = _answers(camp, f"kill{i}.csv", [f"k{i}a", f"k{i}b"], limit=30)
        before = len(store.read_annotations(camp))
        args = ["-C", str(camp.root), "ingest", str(path)]
        assert zygote.run({"point": point, "args": args}) == [KILLED], point
        _sound(camp)
        stored = len(store.read_annotations(camp)) - before
        assert stored == (0 if point == "ingest:before-part" else 30), point
        if stored:  # the interrupted ingest was committed under its own file's name, holding its part only
            message = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=camp.root, capture_output=True,
                                     text=True).stdout
            assert f"Ingest 30 annotations from kill{i}.csv" in message and message.count("data/annotations/") == 1
        assert zygote.run({"args": args}) == [0]  # the user runs it again: nothing is stored twice
        assert len(store.read_annotations(camp)) - before == 30
        _sound(camp)


def test_a_rollback_killed_at_3_points_is_finished_by_the_next_command(zygote, camp):
    rounds = store.completed_rounds(camp)
    assert len(rounds) >= len(ROLLBACK_POINTS) + 1
    for point, target in zip(ROLLBACK_POINTS, reversed(rounds[:-1])):
        assert zygote.run({"point": point, "args": ["-C", str(camp.root), "rollback", str(target)]}) == [KILLED]
        _sound(camp)
        assert store.completed_rounds(camp) == list(range(1, target + 1)), point
        assert store.data_md5s(camp) == version.data_listing(camp, version.round_tag(target)), point


def test_two_ingests_of_1000_answers_and_a_round_at_once_store_everything_once(zygote, camp):
    before = len(store.read_annotations(camp))
    head = version.head(camp)
    files = [_answers(camp, f"{side}.csv", [f"w{side}{k:02d}" for k in range(17)], limit=1000) for side in "AB"]
    jobs = [{"args": ["-C", str(camp.root), "ingest", str(path)]} for path in files]
    jobs.append({"args": ["-C", str(camp.root), "round", "--simulate", "--force"]})
    assert zygote.run(*jobs) == [0, 0, 0]
    _sound(camp)
    annotations = store.read_annotations(camp)
    simulated = annotations.iloc[before:].query("source == 'simulated'")
    assert len(annotations) == before + 2000 + len(simulated)
    assert not annotations.duplicated(["example_id", "annotator_id"]).any()
    log = subprocess.run(["git", "log", "--format=%P %s", f"{head}..HEAD"], cwd=camp.root, capture_output=True,
                         text=True).stdout.splitlines()
    assert len(log) == 3 and all(len(line.split(" ")[0]) == 40 and " " in line for line in log)  # one parent each
    subjects = sorted(line.split(" ", 1)[1] for line in log)
    assert [s.split(" (")[0] for s in subjects[:2]] == ["Ingest 1000 annotations from A.csv",
                                                        "Ingest 1000 annotations from B.csv"]
    assert subjects[2].startswith("Round ")


def test_a_hand_typed_round_waits_for_the_scheduled_round_then_runs(zygote, camp):
    rounds = store.completed_rounds(camp)
    # the scheduled round holds the lock 10 s longer than it needs: the hand-typed one, started once the lock is
    # taken, finds it taken however fast this machine runs the round
    scheduled = {"flow": "scheduled", "dir": str(camp.root), "hold_s": 10}
    by_hand = {"after_lock": str(camp.root), "args": ["-C", str(camp.root), "round", "--simulate", "--force"]}
    assert zygote.run(scheduled, by_hand) == [0, 0]
    assert store.completed_rounds(camp) == [*rounds, rounds[-1] + 1, rounds[-1] + 2]
    assert "waiting for the campaign: `scheduled round`" in zygote.log(by_hand)
    _sound(camp)
