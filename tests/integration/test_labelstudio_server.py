"""A real Label Studio server: push a round's batch, label as two users, pull, run the next round.

Label Studio pins its own Django stack, so it lives in a virtual environment of its own
(as its users install it), cached outside the repository:
``$CROWDLOOP_LABEL_STUDIO_VENV``, default ``~/.cache/crowdloop/label-studio-<version>``,
created on first use (about a minute here). The server binds 127.0.0.1 only, keeps its
data in a temporary folder and is stopped by its process id. Users and their personal
access tokens are made the way a Label Studio admin can: Django's shell inside its venv.
Where Label Studio cannot be installed or started, the test is skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from crowdloop import api
from crowdloop.cli import main
from crowdloop.flows.scheduled import scheduled_round
from crowdloop.tasks import config, ingest, labelstudio_client, store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VERSION = "1.23.2"
USERS = ("admin@crowdloop.test", "second@crowdloop.test")
# run inside Label Studio's Django: every user joins the organization and gets a personal access token
MAKE_USERS = """
import json
from jwt_auth.models import LSAPIToken
from organizations.models import Organization
from users.models import User
org = Organization.objects.first()
tokens = {}
for email in %r:
    user = User.objects.filter(email=email).first() or User.objects.create_user(email=email, password=email[::-1])
    if not org.has_user(user):
        org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    tokens[email] = LSAPIToken.for_user(user).get_full_jwt()
print("TOKENS" + json.dumps(tokens))
""" % (USERS,)


def _venv() -> Path:
    default = Path.home() / ".cache" / "crowdloop" / f"label-studio-{VERSION}"
    return Path(os.environ.get("CROWDLOOP_LABEL_STUDIO_VENV") or default)


def _install(venv: Path) -> Path:
    """Label Studio's venv, made once (a lock keeps two test runs from building it together)."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    ready = venv / ".crowdloop-ready"
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.is_file():
            started = time.monotonic()
            steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                     [str(venv / "bin" / "pip"), "install", "-q", f"label-studio=={VERSION}"]]
            for step in steps:
                done = subprocess.run(step, capture_output=True, text=True, timeout=1200)
                if done.returncode:
                    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                    pytest.skip(f"Label Studio {VERSION} could not be installed into {venv}: {' / '.join(tail)}")
            ready.write_text(f"installed in {time.monotonic() - started:.0f} s\n")
    return venv


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """``(url, {email: personal access token})`` of a fresh Label Studio on 127.0.0.1."""
    venv = _install(_venv())
    data = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Our own SECRET_KEY (it signs the tokens): Label Studio 1.23.2 writes a random one to <data>/.env at
    # start, and one starting with "$" (2 % of them) reads back as a reference to another variable, so the
    # shell below would sign the tokens with a second key that the running server refuses ("Token is invalid").
    env = {**os.environ, "SECRET_KEY": secrets.token_hex(32), "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "DJANGO_DB": "sqlite", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": ""}
    log = open(data / "server.log", "w")
    server = subprocess.Popen([str(venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host",
                               "127.0.0.1", "--port", str(port), "--username", USERS[0], "--password",
                               USERS[0][::-1]], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    try:
        deadline = time.monotonic() + 300
        while not _up(url):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (data / "server.log").read_text().strip().splitlines()[-3:]
                pytest.skip(f"Label Studio {VERSION} did not start on {url}: {' / '.join(tail)}")
            time.sleep(1)
        package = next((venv / "lib").glob("python3*/site-packages/label_studio"))
        made = subprocess.run([str(venv / "bin" / "python"), "manage.py", "shell", "-c", MAKE_USERS], cwd=package,
                              env=env, capture_output=True, text=True, timeout=300, check=True)
        tokens = json.loads(made.stdout.split("TOKENS", 1)[1])
        yield url, tokens
    finally:
        server.terminate()  # by its process id
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _choose(choice: str) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]


def test_push_label_as_two_users_pull_and_the_next_round_runs_on_the_answers(label_studio, campaign_factory,
                                                                              tmp_path, monkeypatch, capsys):
    from label_studio_sdk import LabelStudio

    url, tokens = label_studio
    title = "crowdloop round trip"
    camp = campaign_factory(tmp_path / "camp", labelstudio={"project": title, "annotator_id": "email"},
                            schedule={"min_answered": 0.1})
    api.run_round(camp)
    batch = store.read_batch(camp, 1)
    before = len(store.read_annotations(camp))
    monkeypatch.setenv(labelstudio_client.URL_ENV, url)
    monkeypatch.setenv(labelstudio_client.KEY_ENV, tokens[USERS[0]])
    started = time.monotonic()

    root = str(camp.root)
    assert main(["-C", root, "export", "--format", "label-studio"]) == 0
    assert main(["-C", root, "labelstudio", "push"]) == 0
    assert "(created): 8 tasks imported, 0 already there" in capsys.readouterr().out
    assert api.labelstudio_push(camp).imported == 0  # pushing again adds nothing

    first, second = (LabelStudio(base_url=url, api_key=tokens[user]) for user in USERS)
    project = next(p for p in first.projects.list() if p.title == title)
    exported = (camp.exports_dir / "round-001" / "label_config.xml").read_text()
    assert first.projects.get(project.id).label_config.strip() == exported.strip()  # the project runs that config
    tasks = sorted(first.tasks.list(project=project.id), key=lambda t: t.id)
    assert [t.data["example_id"] for t in tasks] == batch["example_id"].tolist()

    classes = config.load(camp.params_file).classes
    given = {}
    for i, task in enumerate(tasks[:-1]):
        first.annotations.create(task.id, result=_choose(classes[i % 4]))
        given[(task.data["example_id"], USERS[0])] = classes[i % 4]
    first.annotations.create(tasks[-1].id, result=[], was_cancelled=True)  # the first user skips the last task
    second.annotations.create(tasks[0].id, result=_choose(classes[1]))      # the first task, answered by both
    given[(tasks[0].data["example_id"], USERS[1])] = classes[1]

    assert main(["-C", root, "labelstudio", "pull"]) == 0
    out = capsys.readouterr().out
    assert f"{len(given)} new annotations stored for round 1" in out and "Label Studio annotations not stored: 1 skipped (cancelled), 0 empty" in out
    stored = store.read_annotations(camp)
    pulled = stored.iloc[before:]
    assert len(stored) == before + len(given)
    assert {(e, a): label for e, a, label in pulled[["example_id", "annotator_id", "label"]].values} == given
    assert set(pulled["annotator_id"]) == set(USERS)
    again = api.labelstudio_pull(camp)
    assert len(again.new) == 0 and again.already_stored == len(given) and again.skipped == 1

    # Label Studio's CSV export of the same project (users by number, skipped annotations left out)
    # reads back as the same answers, and ingesting it stores nothing twice
    exported_csv = tmp_path / "export.csv"
    exported_csv.write_bytes(b"".join(first.projects.exports.download_sync(project.id, export_type="CSV")))
    numbers = {str(client.users.whoami().id): user for client, user in zip((first, second), USERS)}
    by_number = dataclasses.replace(config.load(camp.params_file).labelstudio, annotator_id="table", annotators=numbers)
    rows = ingest.read_answer_file(exported_csv, labelstudio=by_number)
    assert {(e, a): label for e, a, label in rows[["example_id", "annotator_id", "label"]].values if label} == given
    assert len(ingest.ingest_file(camp, exported_csv, classes=classes, on_change="reject", labelstudio=by_number).new) == 0

    result = api.run_round(camp)
    cycle = time.monotonic() - started
    assert result.round == 2 and result.metrics["annotations"] == before + len(given)

    # the next batch goes to the same project; a scheduled round pulls its answers before deciding,
    # runs round 3 on them and sends round 3's batch
    assert api.labelstudio_push(camp).imported == len(store.read_batch(camp, 2))
    newest = max(first.tasks.list(project=project.id), key=lambda t: t.id)
    second.annotations.create(newest.id, result=_choose(classes[0]))
    done = scheduled_round(root)
    assert done["ingested"] == 1 and done["round"] == 3 and Path(done["labelstudio"]).parent == camp.root / "inbox"
    assert len(store.read_annotations(camp)) == before + len(given) + 1
    assert done["labelstudio_push"] == f"round 3: {len(store.read_batch(camp, 3))} tasks imported into project {project.id}"
    asked = len(tasks) + len(store.read_batch(camp, 2)) + len(store.read_batch(camp, 3))
    assert len(list(first.tasks.list(project=project.id))) == asked
    print(f"\nLabel Studio push -> label -> pull -> round 2: {cycle:.1f} s")
