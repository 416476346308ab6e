"""A round and its model.name: a bad name is one line before any training, and a model saved again
under the same name is planned and trained again, not read back."""

from __future__ import annotations

import shutil

import pytest
import yaml

from crowdloop import cli
from crowdloop.tasks import store, train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _set_model_name(camp, name) -> None:
    params = yaml.safe_load(camp.params_file.read_text())
    params["model"]["name"] = name
    camp.params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def _counting(monkeypatch) -> list:
    calls, real = [], train.train_and_predict
    monkeypatch.setattr(train, "train_and_predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_round_whose_model_folder_is_missing_fails_in_one_line_and_trains_nothing(tiny_campaign, tmp_path,
                                                                                     capsys, monkeypatch):
    camp = tiny_campaign
    _set_model_name(camp, str(tmp_path / "moved-away"))
    calls, before = _counting(monkeypatch), store.data_hash(camp)
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 2
    err = capsys.readouterr().err
    assert "crowdloop: error: model.name in params.yaml is" in err and "moved-away': no such folder" in err
    assert "Traceback" not in err and calls == [] and store.data_hash(camp) == before


def test_a_model_saved_again_under_the_same_name_is_trained_again_after_a_rollback(tiny_campaign, tiny_model_dir,
                                                                                   tmp_path, capsys, monkeypatch):
    camp = tiny_campaign
    mine = shutil.copytree(tiny_model_dir, tmp_path / "mine")
    _set_model_name(camp, str(mine))
    calls = _counting(monkeypatch)
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 0
    assert cli.main(["-C", str(camp.root), "rollback", "0"]) == 0
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 0
    assert calls == [1] and "plan read back" in capsys.readouterr().err  # unchanged: read back

    assert cli.main(["-C", str(camp.root), "rollback", "0"]) == 0
    shutil.rmtree(mine)
    shutil.copytree(tiny_model_dir, mine, copy_function=shutil.copy)  # written again: new mtimes
    assert cli.main(["-C", str(camp.root), "round", "--simulate"]) == 0
    assert calls == [1, 1] and "plan read back" not in capsys.readouterr().err


def test_a_user_error_in_the_training_step_is_not_retried(tiny_campaign, capsys, monkeypatch):
    """The training task retries once (after 5 s) a failure that may pass; a CrowdloopError (labels
    of one class, a hub model that cannot be fetched: 30 s of connection retries each time) fails
    the same way again, so it is reported at once."""
    from crowdloop.tasks.errors import DataError

    calls = []

    def one_class(*args, **kwargs):
        calls.append(1)
        raise DataError("the consensus labels so far are of 1 class")

    monkeypatch.setattr(train, "train_and_predict", one_class)
    assert cli.main(["-C", str(tiny_campaign.root), "round", "--simulate"]) == 2
    err = capsys.readouterr().err
    assert calls == [1] and "crowdloop: error: the consensus labels so far are of 1 class" in err
    assert err.count("the consensus labels so far are of 1 class") == 1, err  # not Prefect's "Finished in state" too
