"""git + DVC versioning of a campaign (real git and DVC, in tmp_path)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from crowdloop.campaign import ROUND_PARAMS
from crowdloop.tasks import store, version


def _write(campaign, name, text):
    path = campaign.data / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path):
    campaign = store.Campaign(tmp_path / "camp")
    _write(campaign, "a.txt", "round zero\n")
    (campaign.root / "params.yaml").write_text("seed: 0\n")
    version.init_repo(campaign, param_sections=["seed"])
    version.commit(campaign, "r0", tag="round-000")
    return campaign


def test_root_dvc_yaml_is_what_init_writes():
    root = Path(__file__).resolve().parents[2]
    assert (root / "dvc.yaml").read_text() == version.render_dvc_yaml(store.Campaign(root), ROUND_PARAMS)


def test_rollback_restores_data_hash_and_keeps_history(repo):
    _write(repo, "b.txt", "round one\n")
    repo.metrics_file.write_text('{"acc": 0.5}\n')
    version.commit(repo, "r1", tag="round-001")
    at_one = store.data_hash(repo)
    _write(repo, "c.txt", "round two\n")
    _write(repo, "a.txt", "changed\n")
    version.commit(repo, "r2", tag="round-002")
    assert store.data_hash(repo) != at_one

    version.rollback(repo, 1)
    assert store.data_hash(repo) == at_one
    assert not (repo.data / "c.txt").exists()
    assert version.round_tags(repo) == ["round-000", "round-001"]
    tags = subprocess.run(["git", "tag"], cwd=repo.root, capture_output=True, text=True).stdout
    assert "archived/round-002-" in tags
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo.root, capture_output=True, text=True).stdout
    assert "r2" in log  # later rounds stay in the history


def test_a_commit_says_when_it_records_an_edit_of_params_yaml(repo):
    def last_message():
        return subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo.root, capture_output=True,
                              text=True).stdout

    _write(repo, "b.txt", "answers\n")
    version.commit(repo, "Ingest 1 annotation from b.txt", holds=[repo.data / "b.txt"])
    assert "params.yaml" not in last_message()
    (repo.root / "params.yaml").write_text("seed: 1\n")
    _write(repo, "c.txt", "more answers\n")
    version.commit(repo, "Ingest 1 annotation from c.txt", holds=[repo.data / "c.txt"])
    assert last_message().rstrip().endswith("Also records params.yaml, changed since the last commit.")
    assert version.dirty(repo) == []


def test_a_params_yaml_without_a_section_dvc_yaml_lists_is_refused_before_the_round(tmp_path):
    campaign = store.Campaign(tmp_path / "camp")
    campaign.root.mkdir()
    (campaign.root / "dvc.yaml").write_text(version.render_dvc_yaml(campaign, ROUND_PARAMS))
    full = "".join(f"{name}: {{}}\n" for name in ROUND_PARAMS)
    campaign.params_file.write_text(full)
    version.check_param_sections(campaign)  # every section there, even empty: DVC records the round
    campaign.params_file.write_text(full.replace("routing: {}\n", ""))
    with pytest.raises(version.ConfigError, match=r"params.yaml: 1 section missing \(routing\); DVC records"):
        version.check_param_sections(campaign)
    campaign.params_file.write_text("")
    with pytest.raises(version.ConfigError, match=f"{len(ROUND_PARAMS)} sections missing \\(seed, classes, "):
        version.check_param_sections(campaign)


def test_rollback_to_unknown_round_is_a_clear_error(repo):
    with pytest.raises(version.VersionError, match="no round 7"):
        version.rollback(repo, 7)


def test_never_commits_into_an_enclosing_repository(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    inner = store.Campaign(tmp_path / "not-a-campaign")
    inner.data.mkdir(parents=True)
    with pytest.raises(version.VersionError, match="not the top of its own git repository"):
        version.commit(inner, "oops")
    out = subprocess.run(["git", "log"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode != 0  # still no commit in the outer repository


def test_params_and_metrics_diff_between_round_tags(repo):
    repo.metrics_file.write_text('{"acc": 0.5}\n')
    version.commit(repo, "r1", tag="round-001")
    (repo.root / "params.yaml").write_text("seed: 1\n")
    repo.metrics_file.write_text('{"acc": 0.75}\n')
    _write(repo, "b.txt", "x\n")
    version.commit(repo, "r2", tag="round-002")
    dvc = [str(Path(__import__("sys").executable)), "-m", "dvc"]
    params = subprocess.run([*dvc, "params", "diff", "round-001", "round-002"], cwd=repo.root,
                            capture_output=True, text=True, check=True).stdout
    metrics = subprocess.run([*dvc, "metrics", "diff", "round-001", "round-002"], cwd=repo.root,
                             capture_output=True, text=True, check=True).stdout
    assert "seed" in params and "0.75" in metrics


def test_a_commit_followed_by_a_push_runs_both_in_one_dvc_interpreter(repo, tmp_path):
    from crowdloop.tasks.version import shell

    remote = tmp_path / "remote"
    _write(repo, "b.txt", "round one\n")
    version.commit(repo, "r1", tag="round-001", push_next=True)
    waiting = shell._warm[shell._key(repo.root)]
    assert waiting.alive()  # the commit's interpreter waits for the push

    version.push(repo, str(remote))
    assert shell._key(repo.root) not in shell._warm
    assert not waiting.alive()  # it ran the remote's set-up and the push, then ended
    status = subprocess.run([str(Path(sys.executable).parent / "dvc"), "status", "-c", "-q"], cwd=repo.root)
    assert status.returncode == 0  # everything the commit recorded is on the remote
    assert any(p.is_file() for p in remote.rglob("*"))


def test_a_failed_dvc_command_says_why_and_leaves_no_interpreter_waiting(repo):
    from crowdloop.tasks.version import shell

    with pytest.raises(version.VersionError, match=r"dvc checkout missing\.dvc` failed.*missing\.dvc. does not exist"):
        version.dvc(["checkout", "missing.dvc"], root=repo.root, keep=True)
    assert shell._key(repo.root) not in shell._warm


@pytest.mark.skipif(importlib.util.find_spec("dvc_s3") is not None, reason="needs an environment without dvc-s3")
def test_an_unexpected_dvc_error_is_shown_not_dvc_s_invitation_to_its_support_chat(repo):
    version.dvc(["remote", "add", "--local", "-d", "elsewhere", "s3://bucket/x"], root=repo.root)
    with pytest.raises(version.VersionError) as err:
        version.dvc(["fetch", "-q"], root=repo.root)
    assert "requires 'dvc-s3' to be installed" in str(err.value) and "Having any troubles" not in str(err.value)


def test_a_waiting_dvc_interpreter_killed_from_outside_is_replaced(repo):
    from crowdloop.tasks.version import shell

    version.prewarm_dvc(repo.root)
    killed = shell._warm[shell._key(repo.root)]._proc
    killed.kill()
    killed.wait()
    _write(repo, "b.txt", "round one\n")
    version.commit(repo, "r1", tag="round-001")  # a new interpreter does the add
    assert not version.changed_data(repo)


def test_prewarming_over_a_dead_interpreter_starts_a_live_one(repo):
    from crowdloop.tasks.version import shell

    version.prewarm_dvc(repo.root)
    dead = shell._warm[shell._key(repo.root)]
    dead._proc.kill()
    dead._proc.wait()
    version.prewarm_dvc(repo.root)
    fresh = shell._warm[shell._key(repo.root)]
    assert fresh is not dead and fresh.alive()
    assert dead._output.closed  # the dead one's handles are released, not leaked
    version.discard_prewarmed(repo.root)
    assert not fresh.alive()


@pytest.mark.parametrize("left", ["", '{"read": {}, "wr'])
def test_a_dvc_lock_file_left_unreadable_by_a_killed_dvc_is_cleared_and_dvc_works_again(repo, left):
    """A DVC command killed while it rewrites .dvc/tmp/rwlock leaves it empty or cut short, and DVC
    refuses every later command. Recovery (the campaign lock held, crowdloop's DVC processes dead
    with their writer) removes it; a readable lock file is left to DVC."""
    rwlock = repo.root / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    rwlock.write_text(left)
    _write(repo, "b.txt", "round one\n")
    with pytest.raises(version.VersionError, match="dvc add"):
        version.commit(repo, "r1")
    version.clear_stale_locks(repo)
    assert not rwlock.exists()
    version.commit(repo, "r1", tag="round-001")
    assert not version.changed_data(repo)
    readable = '{"read": {}, "write": {}}'
    rwlock.write_text(readable)
    version.clear_stale_locks(repo)
    assert rwlock.read_text() == readable
