"""The public Python API drives a campaign exactly as the CLI does: create, two simulated rounds,
ingest a file, read the status — through ``import crowdloop`` alone."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import crowdloop
from crowdloop import cli
from crowdloop.tasks import store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _settings(model_dir) -> dict:
    return {"model": {"name": str(model_dir), "backend": "head", "max_length": 32, "minibatch_size": 16,
                      "head": {"C_grid": [1.0, 10.0]}},
            "select": {"batch_size": 8}}


def _answers(camp, path):
    """Three answers from a new annotator on the first three examples nobody labeled yet."""
    examples, stored = store.read_examples(camp), store.read_annotations(camp)
    fresh = examples.loc[(examples["split"] == "pool") & ~examples["example_id"].isin(stored["example_id"]),
                         "example_id"].iloc[:3]
    pd.DataFrame({"example_id": fresh, "annotator_id": "newcomer",
                  "label": ["billing", "shipping", "account"]}).to_csv(path, index=False)
    return path


def _round(camp, number) -> dict:
    metrics = store.read_round_metrics(camp, number)
    return {k: v for k, v in metrics.items() if not k.startswith("seconds_")}


def test_the_python_api_alone_gives_the_same_campaign_as_the_cli(tmp_path, tiny_model_dir, capsys):
    settings = _settings(tiny_model_dir)

    camp = crowdloop.init_demo(tmp_path / "api" / "demo", seed=1, params=settings)
    # a Campaign made by hand, its root a string, as `crowdloop.Campaign("campaigns/demo")` makes it
    results = list(crowdloop.run_rounds(crowdloop.Campaign(str(camp.root)), 2, simulate=True))
    ingested = crowdloop.ingest(camp, _answers(camp, tmp_path / "api-answers.csv"))
    status = crowdloop.status(camp)

    root = tmp_path / "cli" / "demo"
    assert cli.main(["init", "--demo", str(root), "--seed", "1"]) == 0
    params = yaml.safe_load((root / "params.yaml").read_text())  # what a user edits by hand
    for section, values in settings.items():
        for key, value in values.items():
            params[section][key] = value if not isinstance(value, dict) else params[section][key] | value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    by_cli = store.open_campaign(root)
    assert cli.main(["-C", str(root), "round", "--simulate", "--rounds", "2"]) == 0
    assert cli.main(["-C", str(root), "ingest", str(_answers(by_cli, tmp_path / "cli-answers.csv"))]) == 0
    capsys.readouterr()
    assert cli.main(["-C", str(root), "status"]) == 0
    printed = capsys.readouterr().out

    assert [r.round for r in results] == [1, 2]
    assert [r.metrics["test_accuracy"] for r in results] == [_round(by_cli, n)["test_accuracy"] for n in (1, 2)]
    for number in (1, 2):
        assert _round(camp, number) == _round(by_cli, number)
        batch = "batch.csv"
        assert (camp.round_dir(number) / batch).read_bytes() == (by_cli.round_dir(number) / batch).read_bytes()
    columns = ["example_id", "annotator_id", "label", "round", "source"]
    pd.testing.assert_frame_equal(store.read_annotations(camp)[columns].replace("ingest:api-answers.csv", "x"),
                                  store.read_annotations(by_cli)[columns].replace("ingest:cli-answers.csv", "x"))
    assert len(ingested.new) == 3 and ingested.round == 2
    assert status.annotations == len(store.read_annotations(by_cli))
    assert status.progress.answered == len(store.read_batch(by_cli, 2))
    shown = printed.strip().replace(str(by_cli.root.resolve()), "ROOT")
    assert str(status).replace(str(camp.root.resolve()), "ROOT") == shown


def test_api_errors_are_crowdloop_errors_with_what_to_do(tmp_path):
    with pytest.raises(crowdloop.CrowdloopError, match="crowdloop init"):
        crowdloop.status(tmp_path)
    with pytest.raises(crowdloop.CrowdloopError, match="at least 1"):
        list(crowdloop.run_rounds(tmp_path, 0))


@pytest.mark.parametrize("examples_columns,classes,initial,words", [
    ({"text"}, ["a", "b"], None, "missing column 'id'"),
    ({"example_id", "text"}, "ab", None, "classes is the string 'ab'; pass a list of class names"),
    ({"example_id", "text"}, ["a", "b"], [("zz", "w", "a")], "initial answers:1: unknown example id 'zz'"),
    ({"example_id", "text"}, ["a", "b"], [("e1", "w", "a"), ("e2", "w", "c")],
     "initial answers:2: label 'c' is not a class"),
    ({"example_id", "text"}, ["a", "b"], [("e1", "w", "a"), ("e1", "w", "b")],
     "initial answers:2: annotator 'w' gave example 'e1' the label 'a' on line 1 but this row says 'b'"),
    ({"example_id", "text", "split"}, ["a", "b"], [("e0", "w", "a")], "belongs to the gold test split"),
])
def test_init_campaign_from_python_refuses_what_ingest_would_and_makes_nothing(tmp_path, examples_columns, classes,
                                                                               initial, words):
    examples = pd.DataFrame({"example_id": [f"e{i}" for i in range(6)], "text": [f"text {i}" for i in range(6)],
                             "split": ["test"] + ["pool"] * 5})
    answers = None if initial is None else pd.DataFrame(initial, columns=["example_id", "annotator_id", "label"])
    with pytest.raises(crowdloop.CrowdloopError, match=words):
        crowdloop.init_campaign(tmp_path / "camp", examples[sorted(examples_columns)], classes=classes,
                                initial=answers)
    assert not (tmp_path / "camp").exists()


def test_init_campaign_takes_a_dataframe_of_ids_and_texts_alone_and_answers_checked_as_ingested(tmp_path):
    examples = pd.DataFrame({"id": ["e1", "e2", "e3"], "text": ["one", "two", "three"]})
    answers = pd.DataFrame({"example_id": ["e1", "e1", "e2"], "annotator_id": ["w", "w", "v"],
                            "label": ["b", "b", "a"]})
    camp = crowdloop.init_campaign(tmp_path / "camp", examples, classes=["a", "b"], initial=answers)
    stored = store.read_examples(camp)
    assert stored["example_id"].tolist() == ["e1", "e2", "e3"] and (stored["split"] == "pool").all()
    kept = store.read_annotations(camp)[["example_id", "annotator_id", "label"]].values.tolist()
    assert kept == [["e1", "w", "b"], ["e2", "v", "a"]]  # the same answer twice is stored once, as by an ingest
