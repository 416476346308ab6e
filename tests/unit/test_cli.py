"""The command line: its fast-path constants agree with the code, and its flags reach the readers."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from crowdloop import cli, simulate_cmd
from crowdloop.flows import simulate
from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import importers
from crowdloop.tasks.errors import ConfigError


def _refused(capsys, args: list[str], *words: str) -> str:
    """Run ``crowdloop ARGS``: it exits 2 with an error naming every one of ``words``, no traceback."""
    code = cli.main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert all(word in err for word in words), err
    assert "Traceback" not in err and "Encountered exception" not in err, err
    return err


def test_the_command_and_its_help_load_nothing_heavy():
    """The parsers offer the presets and protocol values from tasks/simulation_protocol.py itself (one
    place); that import must stay light, or every command (and --help) would start slower."""
    probe = ("import sys, crowdloop.cli as c; c._parser(); "
             "print(sorted(m for m in ('numpy', 'pandas', 'prefect', 'mlflow', 'torch', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("fmt,reader", [
    ("tutorial", importers.from_tutorial), ("long", importers.from_long),
    ("wide", importers.from_wide), ("datasets", importers.from_datasets),
])
def test_import_flags_are_options_the_reader_takes(fmt, reader):
    args = cli._parser().parse_args(["simulate", "somewhere", "--format", fmt, "--label-names", "0=a,1=b",
                                     "--annotator-cols", "w1,w2"])
    options = simulate_cmd.import_options(args)
    accepted = set(inspect.signature(reader).parameters) - {"directory", "annotations_file", "file", "path_or_name"}
    assert set(options) <= accepted
    assert options["label_names"] == {"0": "a", "1": "b"}


def test_a_bad_import_file_is_one_line_and_exit_code_2(tmp_path, capsys):
    bad = tmp_path / "answers.csv"
    bad.write_text("who,what\n1,2\n")
    _refused(capsys, ["simulate", str(bad), "--format", "long", "--out", str(tmp_path / "out")], "answers.csv")
    assert not (tmp_path / "out").exists()


def test_simulate_refuses_an_unknown_strategy_listing_the_known_ones(tmp_path, capsys):
    _refused(capsys, ["simulate", str(tmp_path), "--strategies", "activelab,bayes", "--out", str(tmp_path / "out")],
             "unknown 'score.strategy' 'bayes'; known: auto, activelab, activelab_ensemble")
    assert not (tmp_path / "out").exists()


def test_simulate_takes_every_builtin_strategy_as_an_arm():
    from crowdloop.tasks import config_checks

    arms = [protocol.arm(name) for name in config_checks.STRATEGIES]
    assert [a.strategy for a in arms] == list(config_checks.STRATEGIES)
    assert protocol.arm("random").consensus == "majority"  # the ActiveLab tutorial's baseline
    assert {a.consensus for a in arms if a.strategy != "random"} == {"crowdlab"}
    assert protocol.arm("pkg.rules:mine").name == "pkg.rules.mine"


def _demo_simulations(tmp_path, monkeypatch) -> list:
    """Every `simulate` reads generated demo data and records (out, plan) instead of running."""
    from crowdloop.tasks import demo

    data = demo.make_demo(seed=1, n_pool=130, n_test=20, n_initial=0, n_annotators=5, answers_per_example=3)
    monkeypatch.setattr(importers, "load", lambda *a, **k: importers.Replay(data.examples, data.initial,
                                                                             data.answers, demo.DEMO_CLASSES))
    runs = []
    def fake_flow(out, plan, *args, **kwargs):
        runs.append((out, plan))
        (tmp_path / "out" / "summary.txt").write_text("metric: macro_f1\n")
        return {"summary": pd.DataFrame({"F1@25": [0.9]}), "paths": []}

    monkeypatch.setattr(simulate, "simulate_flow", fake_flow)
    return runs


def test_simulate_refuses_to_resume_an_output_folder_made_with_other_params(tmp_path, monkeypatch, capsys):
    from crowdloop.tasks import config

    runs = _demo_simulations(tmp_path, monkeypatch)
    out = tmp_path / "out"
    assert cli.main(["simulate", "data", "--out", str(out)]) == 0
    other = tmp_path / "params.yaml"
    other.write_text(config.template_text().replace("max_length: 64", "max_length: 128"))
    _refused(capsys, ["simulate", "data", "--out", str(out), "--params", str(other)],
             "other settings (different params: model.max_length)")
    assert [run[0] for run in runs] == [str(out)]  # the second simulation never started


def test_simulate_folds_flag_sets_the_k_of_every_arms_rounds(tmp_path, monkeypatch):
    from crowdloop.tasks import config, demo

    runs = _demo_simulations(tmp_path, monkeypatch)
    assert cli.main(["simulate", "data", "--out", str(tmp_path / "out"), "--folds", "4"]) == 0
    ((_, plan),) = runs
    assert plan.folds == 4 and protocol.PRESETS["tutorial"].folds == 3
    cfg = protocol.arm_config(config.load(), plan, plan.arms[0], seed=0, classes=demo.DEMO_CLASSES)
    assert cfg.predict.folds == 4


def _small_campaign(tmp_path):
    from crowdloop import campaign
    from crowdloop.tasks import demo

    data = demo.make_demo(seed=1, n_pool=30, n_test=10, n_initial=10, n_annotators=5, answers_per_example=3)
    return campaign.init_campaign(tmp_path / "camp", data.examples, classes=demo.DEMO_CLASSES, initial=data.initial)


def test_a_campaign_whose_labels_params_yaml_no_longer_lists_is_one_line_and_exit_code_2(tmp_path, capsys):
    made = _small_campaign(tmp_path)
    made.params_file.write_text(made.params_file.read_text().replace(
        "classes: [billing, technical, shipping, account]", "classes: [billing, technical]"))
    err = _refused(capsys, ["-C", str(made.root), "round"])
    (line,) = [line for line in err.splitlines() if "error" in line.lower()]
    assert line.startswith("crowdloop: error: ") and "that params.yaml 'classes' does not list" in line


def test_simulate_refuses_an_unknown_consensus_method_listing_the_known_ones(tmp_path, capsys):
    _refused(capsys, ["simulate", str(tmp_path), "--strategies", "activelab", "--consensus", "majority,dawid_skeen",
                      "--out", str(tmp_path / "out")],
             "unknown consensus method 'dawid_skeen'; use one of crowdlab, majority, dawid_skene")
    assert not (tmp_path / "out").exists()


def _crowd_file(tmp_path):
    """12 items x 4 annotators (three always right, one always 'no') with gold, in the long layout."""
    rows = [(f"i{i}", f"text {i}", a, ("yes" if i % 2 else "no") if a != "w4" else "no", "yes" if i % 2 else "no")
            for i in range(12) for a in ("w1", "w2", "w3", "w4")]
    path = tmp_path / "answers.csv"
    pd.DataFrame(rows, columns=["item", "text", "worker", "answer", "truth"]).to_csv(path, index=False)
    return ["aggregate", str(path), "--format", "long", "--example-col", "item", "--annotator-col", "worker",
            "--label-col", "answer", "--gold-col", "truth"]


def test_aggregate_prints_every_method_at_every_label_count(tmp_path, capsys):
    out = tmp_path / "draws.csv"
    code = cli.main([*_crowd_file(tmp_path), "--methods", "majority,dawid_skene", "--labels-per-item", "all,1,3",
                     "--draws", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "accuracy against the gold of 12 examples" in printed
    assert "best (lead)" in printed and "dawid_skene" in printed
    draws = pd.read_csv(out)
    assert len(draws) == 2 * (1 + 2 + 2)  # methods x (all once, 1 and 3 twice)
    every = draws[draws["labels_per_item"] == "all"].set_index("method")["accuracy"]
    assert every["majority"] == 1.0 and every["dawid_skene"] == 1.0
    assert (draws.loc[draws["labels_per_item"] == "1", "annotations"] == 12).all()


@pytest.mark.parametrize("flags,words", [
    (["--methods", "crowdlab"], "crowdlab needs a model's probabilities"),
    (["--methods", "glob"], "unknown consensus method 'glob'"),
    (["--labels-per-item", "-1"], "--labels-per-item has '-1'; give 'all' or whole numbers of at least 1"),
    (["--labels-per-item", "0"], "--labels-per-item has '0'"),
    (["--labels-per-item", "all,x"], "--labels-per-item has 'x'"),
    (["--draws", "0"], "--draws is 0; draw at least 1"),
    (["--label-names", "no"], "--label-names has 'no'; write each as raw=name"),
    (["--label-names", "=yes,no=no"], "--label-names has '=yes'"),
    (["--label-names", "no=a,no=b"], "--label-names maps 'no' twice ('a' and 'b')"),
    (["--label-names", ""], "--label-names is empty; write each class as raw=name"),
    (["--label-names", " , "], "--label-names is empty"),
    (["--seed", "-1"], "--seed is -1; give a whole number from 0 to 2147483647"),  # was a NumPy traceback
    (["--seed", str(2**32)], f"--seed is {2**32}; give a whole number from 0"),
    (["--methods", ""], "no consensus method given"),
    (["--methods", "all,majority"], "'all' stands for every consensus method, so it stands alone"),  # was "unknown
    # consensus method 'all'; use one of ... (or all)"
    (["--methods", " , "], "no consensus method given"),
    (["--format", "wide", "--text-cols", "text,item"], "--text-cols names 2 columns (text,item); the wide format"),
    (["--label-col", "response"], "answers.csv: missing column 'response' (found: item, text, worker, answer, truth); "
                                  "name the column that holds it with --label-col"),  # was "... in the import options"
])
def test_aggregate_errors_are_one_line(tmp_path, capsys, flags, words):
    _refused(capsys, [*_crowd_file(tmp_path), *flags], words)


def test_aggregate_runs_a_method_or_count_named_twice_once_and_names_a_lone_best_without_a_lead(tmp_path, capsys):
    out = tmp_path / "new" / "folder" / "draws.csv"  # folders made: the draws are not lost after the work
    code = cli.main([*_crowd_file(tmp_path), "--methods", "majority,majority", "--labels-per-item", "all,all,1,1",
                     "--draws", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    draws = pd.read_csv(out)
    assert len(draws) == 2 and draws["labels_per_item"].tolist() == ["all", "1"]  # was 8 rows, each twice over
    assert "(mean ± std over 1 draw below all labels" in printed
    assert "± 0.000" not in printed  # one draw per count: no spread to show (a repeat made one of 0)
    assert "best (lead)" in printed and "nan" not in printed  # one method: no runner-up, no (+nan)


def test_aggregate_fits_on_the_annotations_of_examples_without_gold_too():
    """Gold on a few examples ("gold questions"): the rest still tell the methods who is reliable. Only the
    gold examples' annotations were aggregated, so a and b, who split every gold example, could not be told apart."""
    from crowdloop.tasks import aggregate

    truth = {f"n{i}": "yes" if i % 2 else "no" for i in range(8)}
    wrong = {"yes": "no", "no": "yes"}
    rows = [(e, a, t if a != "b" else wrong[t]) for e, t in truth.items() for a in ("a", "b", "c")]
    gold = pd.Series({f"g{i}": "yes" if i % 2 else "no" for i in range(4)})
    rows += [(e, a, t if a == "a" else wrong[t]) for e, t in gold.items() for a in ("a", "b")]
    annotations = pd.DataFrame(rows, columns=["example_id", "annotator_id", "label"])
    result = aggregate.one_shot(annotations, gold, classes=["no", "yes"], methods=["wawa", "dawid_skene"],
                                labels_per_item=[aggregate.ALL], draws=1, seed=0).set_index("method")
    assert result.loc["wawa", "accuracy"] == 1.0 and result.loc["dawid_skene", "accuracy"] == 1.0  # was 0.5
    assert (result["examples"] == 4).all() and (result["annotations"] == len(annotations)).all()


def test_aggregate_refuses_an_out_that_is_a_folder_before_the_work(tmp_path, capsys):
    _refused(capsys, [*_crowd_file(tmp_path), "--out", str(tmp_path)], "--out", "is a folder; name the CSV file")


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_a_file_with_only_its_header_is_refused_in_one_line(tmp_path, capsys, layout):
    path = tmp_path / "answers.csv"
    path.write_text("item,text,worker,answer,truth\n" if layout == "long" else "id,text,w1,w2\n")
    flags = ["--example-col", "item", "--annotator-col", "worker", "--label-col", "answer", "--gold-col", "truth"]
    _refused(capsys, ["aggregate", str(path), "--format", layout, *(flags if layout == "long" else [])],
             "answers.csv: no rows below the header")


def test_the_tutorial_format_given_a_file_says_to_name_the_format(tmp_path, capsys):
    flags = _crowd_file(tmp_path)
    _refused(capsys, ["aggregate", flags[1]], "answers.csv is a file; the tutorial format (the default --format) "
             "reads a folder", "--format long")


def test_aggregate_refuses_gold_examples_without_annotations(tmp_path, capsys):
    path = tmp_path / "answers.csv"
    pd.DataFrame({"item": ["i1", "i2"], "worker": ["w1", "w1"], "answer": ["yes", "no"]}).to_csv(path, index=False)
    examples = tmp_path / "examples.csv"
    pd.DataFrame({"item": ["i1", "i2", "i3", "i4"], "text": ["a", "b", "c", "d"],
                  "truth": [None, None, "yes", "no"]}).to_csv(examples, index=False)
    _refused(capsys, ["aggregate", str(path), "--format", "long", "--example-col", "item", "--annotator-col", "worker",
                      "--label-col", "answer", "--examples", str(examples), "--examples-gold-col", "truth"],
             "none of the 2 examples with a gold label has an annotation")


def test_aggregate_refuses_an_answer_no_gold_label_has_naming_the_line(tmp_path, capsys):
    flags = _crowd_file(tmp_path)
    path = Path(flags[1])
    lines = path.read_text().splitlines()
    assert lines[5] == "i1,text 1,w1,yes,yes"  # the 5th answer, on line 6
    lines[5] = "i1,text 1,w1,maybe,yes"
    path.write_text("\n".join(lines) + "\n")
    _refused(capsys, flags, "answers.csv:6: annotator 'w1' gives example 'i1' the label 'maybe'", "['no', 'yes']",
             "--label-names")


@pytest.mark.parametrize("command", ["aggregate", "simulate"])
def test_a_wide_file_with_a_label_column_is_refused_in_one_line(tmp_path, capsys, command):
    path = tmp_path / "wide.csv"
    path.write_text("text,a1,a2,label,id\n" + "".join(f"t{i},{i % 2},{i % 2},{i % 2},x{i}\n" for i in range(8)))
    out = ["--out", str(tmp_path / "out")] if command == "simulate" else []
    _refused(capsys, [command, str(path), "--format", "wide", *out], "wide.csv: column 'label' would be read as an "
             "annotator's labels", "--gold-col label")


def test_simulate_says_a_missing_params_file_is_missing(tmp_path, capsys):
    flags = _crowd_file(tmp_path)[1:]
    err = _refused(capsys, ["simulate", *flags, "--params", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")],
                   "--params", "nope.yaml: no such params file")
    assert "crowdloop init" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags,words", [
    (["--rounds", "-1"], "--rounds is -1; it must be a whole number of at least 1"),
    (["--rounds", "0"], "--rounds is 0"),
    (["--batch-size", "0"], "--batch-size is 0"),
    (["--max-annotations", "0"], "--max-annotations is 0"),
    (["--start-size", "-2"], "--start-size is -2; it must be a whole number of at least 0"),
    (["--folds", "1"], "--folds is 1; it must be a whole number of at least 2"),
    (["--labels-per-start", "4", "--max-annotations", "3"], "--labels-per-start 4 is more than --max-annotations 3"),
    (["--test-size", "2"], "--test-size is 2.0; give a fraction strictly between 0 and 1"),
    (["--evaluate", "validation", "--validation-size", "1.5"], "--validation-size is 1.5"),
    (["--goes-bad", "0"], "--goes-bad is 0; name a round, 1 or later"),
    (["--rounds", "5", "--goes-bad", "6"], "--goes-bad 6 is after the last round (5)"),
    (["--bad-annotator", "w1"], "--bad-annotator is given without --goes-bad"),
    (["--seeds", "0"], "--seeds is 0; run at least 1 seed"),
    (["--target", "5"], "--target is 5.0; give a macro_f1 value above 0 and at most 1"),
    (["--strategies", ""], "--strategies names no strategy"),
    (["--strategies", " , "], "--strategies names no strategy"),
    (["--strategies", "all,random"], "--strategies all stands for every strategy, so it stands alone"),
])
def test_simulate_refuses_a_protocol_that_cannot_run_and_writes_nothing(tmp_path, capsys, flags, words):
    out = tmp_path / "out"
    _refused(capsys, ["simulate", *_crowd_file(tmp_path)[1:], *flags, "--out", str(out)], words)
    assert not out.exists()


@pytest.mark.parametrize("field,value,words", [
    ("evaluate", "train", "--evaluate is 'train'; use test or validation"),
    ("answered_by", "me", "--answered-by is 'me'; use tutorial or routed"),
    ("test_size", 0, "--test-size is 0; give a fraction"),
    ("rounds", 2.5, "--rounds is 2.5; it must be a whole number"),
])
def test_simulate_from_python_refuses_protocol_values_the_flags_cannot_give(field, value, words):
    preset = dataclasses.replace(protocol.PRESETS["tutorial"], **{field: value})
    with pytest.raises(ConfigError, match=re.escape(words)):
        protocol.check_simulation(preset, seeds=1, target=0.9, metric="macro_f1")


def test_simulate_runs_a_strategy_or_method_named_twice_once(tmp_path, capsys, monkeypatch):
    """Named twice, an arm ran twice into one checkpoint folder and curves.csv held each of its rounds twice."""
    ran = {}

    def flow(out, plan, *args, **kwargs):  # the arms it was given, instead of running them
        ran["arms"] = plan.arms
        Path(out, "summary.txt").write_text("")
        return {"paths": []}

    monkeypatch.setattr(simulate, "simulate_flow", flow)
    code = cli.main(["simulate", *_crowd_file(tmp_path)[1:], "--strategies", "random,random,auto", "--consensus",
                     "majority,glad,majority", "--start-size", "4", "--labels-per-start", "1",
                     "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert [a.name for a in ran["arms"]] == ["random+majority", "random+glad", "auto+majority", "auto+glad"]
    twice = dataclasses.replace(protocol.PRESETS["tutorial"], arms=(protocol.RANDOM, protocol.RANDOM))
    with pytest.raises(ConfigError, match="the arm 'random' is named twice"):
        protocol.check_simulation(twice, seeds=1, target=0.9, metric="macro_f1")


def test_simulate_says_when_params_set_a_consensus_method_its_arms_override(tmp_path, monkeypatch, caplog):
    """consensus.method: glad in --params ran CROWDLAB arms without a word."""
    from crowdloop import api

    monkeypatch.setattr(simulate, "simulate_flow", lambda *args, **kwargs: {"paths": []})
    params = tmp_path / "params.yaml"
    params.write_text("consensus:\n  method: glad\npredict:\n  folds: 5\nrouting:\n  min_quality: 0.5\n")
    options = dict(format="long", example_col="item", annotator_col="worker", label_col="answer", gold_col="truth")
    with caplog.at_level("WARNING", logger="crowdloop"):
        api.simulate(_crowd_file(tmp_path)[1], seeds=1, strategies=["auto"], params=params, out=tmp_path / "out",
                     protocol={"n_start": 4, "labels_per_start": 1}, **options)
    said = [r.getMessage() for r in caplog.records if "does not read" in r.getMessage()]
    assert said == [f"{params} sets consensus.method: glad and predict.folds: 5, which a simulation does not read: "
                    "each arm takes its strategy from --strategies and its consensus method from --consensus (without "
                    "it: crowdlab, and majority for random), and the folds come from the preset (--folds)"]
    for folder in ("afile", "afile/below"):  # --out a file, or a folder under one: said, not a traceback
        (tmp_path / "afile").write_text("")
        with pytest.raises(ConfigError, match=f"--out {tmp_path / folder}: {tmp_path / 'afile'} is a file; name a folder"):
            api.simulate(_crowd_file(tmp_path)[1], seeds=1, strategies=["auto"], out=tmp_path / folder,
                         protocol={"n_start": 4, "labels_per_start": 1}, **options)
    caplog.clear()
    params.write_text("routing:\n  min_quality: 0.5\n")  # what a simulation reads: nothing to say
    with caplog.at_level("WARNING", logger="crowdloop"):
        api.simulate(_crowd_file(tmp_path)[1], seeds=1, strategies=["auto"], params=params, out=tmp_path / "out2",
                     protocol={"n_start": 4, "labels_per_start": 1}, **options)
    assert not [r for r in caplog.records if "does not read" in r.getMessage()]


def test_simulate_refuses_a_bad_annotator_who_holds_no_answer(tmp_path, capsys):
    flags = _crowd_file(tmp_path)[1:]
    _refused(capsys, ["simulate", *flags, "--goes-bad", "3", "--bad-annotator", "w9", "--out", str(tmp_path / "out")],
             "--bad-annotator 'w9' holds no answer")
    assert not (tmp_path / "out").exists()


def test_simulate_refuses_an_embedding_cache_that_is_a_file(tmp_path, capsys):
    flags = _crowd_file(tmp_path)[1:]
    (tmp_path / "cache").write_text("not a folder")
    _refused(capsys, ["simulate", *flags, "--embedding-cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")],
             "--embedding-cache", "is a file; name a folder")
    assert not (tmp_path / "out").exists() and (tmp_path / "cache").read_text() == "not a folder"


def test_the_command_exits_with_its_code_after_its_atexit_handlers_with_everything_frozen(tmp_path):
    """exit_frozen (the `crowdloop` command's and the benchmarks' exit): the exit code and atexit
    handlers (log flushing, Prefect's server stop) are kept; the objects are out of the last collections."""
    script = ("import atexit, gc\nfrom crowdloop import cli\n"
              "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0, flush=True))\n"
              "cli.exit_frozen(3)\nprint('not reached')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == "frozen at exit: True"


def _exit_with_sigterm_in_an_atexit_handler(then_sleep: float) -> subprocess.CompletedProcess:
    """A process armed as the `crowdloop` command is (stop_on_sigterm) whose atexit handler, run by
    exit_frozen, receives SIGTERM and then takes ``then_sleep`` seconds (the grace is 1 s)."""
    script = ("import atexit, os, signal, time\nfrom crowdloop import cli, signals\n"
              "signals.TERM_GRACE_SECONDS = 1.0\nsignals.stop_on_sigterm()\n"
              "def handler():\n    os.kill(os.getpid(), signal.SIGTERM)\n"
              f"    time.sleep({then_sleep})\n    print('the exit finished its work', flush=True)\n"
              "atexit.register(handler)\ncli.exit_frozen(0)\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_a_sigterm_while_the_command_exits_lets_the_exit_finish_without_a_traceback():
    """The SIGTERM that reached `crowdloop simulate` as it exited after its last round raised Terminated
    inside Prefect's and torch's atexit handlers: 'Exception ignored' tracebacks, and their work cut."""
    done = _exit_with_sigterm_in_an_atexit_handler(then_sleep=0.2)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the exit finished its work"
    assert "Traceback" not in done.stderr and "Terminated" not in done.stderr


def test_an_exit_that_outlasts_the_grace_after_a_sigterm_is_ended_with_143():
    done = _exit_with_sigterm_in_an_atexit_handler(then_sleep=30)
    assert done.returncode == 143 and "the exit finished its work" not in done.stdout, done.stderr


def test_demo_refuses_a_round_count_below_1_before_making_the_campaign(tmp_path, capsys):
    for rounds in ("0", "-1"):
        _refused(capsys, ["demo", str(tmp_path / "demo"), "--rounds", rounds], f"--rounds is {rounds}; run at least 1 round")
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize("rows,words", [
    ('e1,one\ne2,""\ne3,three\n', ["examples.csv:3:", "example 'e2' has an empty text"]),
    ("e1,one\ne2,   \ne3,three\n", ["examples.csv:3:", "example 'e2' has an empty text"]),
    ("e1,one\n,two\ne3,three\n", ["examples.csv:3:", "empty id"]),
    ("e1,one\ne2,two\ne1,three\n", ["examples.csv:4:", "example id 'e1' appears more than once", "line 2"]),
])
def test_init_refuses_a_bad_examples_row_at_its_line_and_makes_nothing(tmp_path, capsys, rows, words):
    examples = tmp_path / "examples.csv"
    examples.write_text("id,text\n" + rows)
    err = _refused(capsys, ["init", str(tmp_path / "camp"), "--examples", str(examples), "--classes", "spam,ham"],
                   *words)
    assert err.count("\n") == 1
    assert not (tmp_path / "camp").exists()


@pytest.mark.parametrize("flags,words", [
    (["--classes", "spam"], ["--classes needs at least two class names"]),
    (["--classes", "spam, ham,spam"], ["--classes names the class 'spam' twice"]),
    ([], ["init needs --classes a,b,c"]),
    (["--demo", "--classes", "spam,ham"], ["init --demo makes its own examples and classes"]),
])
def test_init_names_the_flag_the_user_gave_in_the_usual_one_line_error(tmp_path, capsys, flags, words):
    examples = tmp_path / "examples.csv"
    examples.write_text("id,text\ne1,one\ne2,two\n")
    err = _refused(capsys, ["init", str(tmp_path / "camp"), "--examples", str(examples), *flags], *words)
    assert err.startswith("crowdloop: error: ") and err.count("\n") == 1 and "params.yaml" not in err
    assert not (tmp_path / "camp").exists()


def test_demo_points_at_the_last_round_it_ran(tmp_path, monkeypatch, capsys):
    from crowdloop import api, rounds_cmd

    made = []
    def init_demo(directory, seed):
        made.append(directory)
        return SimpleNamespace(root=Path(directory), params_file=Path(directory) / "params.yaml")

    monkeypatch.setattr(api, "init_demo", init_demo)
    monkeypatch.setattr(api, "status", lambda campaign: "status")
    monkeypatch.setattr(rounds_cmd, "run", lambda root, count, **kwargs: count - 2)  # the stopping rule fired
    assert cli.main(["demo", str(tmp_path / "demo"), "--rounds", "12"]) == 0
    assert "dvc metrics diff round-001 round-010" in capsys.readouterr().out
    assert made == [tmp_path / "demo"]
    monkeypatch.setattr(rounds_cmd, "run", lambda root, count, **kwargs: None)  # no round ran
    assert cli.main(["demo", str(tmp_path / "again"), "--rounds", "1"]) == 0
    printed = capsys.readouterr().out
    assert "git log --oneline --decorate" in printed and "dvc metrics diff" not in printed


def test_a_rollback_to_a_round_that_does_not_exist_leaves_nothing_pending(tmp_path, capsys):
    from crowdloop.tasks import journal

    made = _small_campaign(tmp_path)
    _refused(capsys, ["-C", str(made.root), "rollback", "99"], "there is no round 99 to roll back to (tags: round-000)")
    assert journal.read(made) is None
    assert cli.main(["-C", str(made.root), "status"]) == 0
    assert "interrupted" not in capsys.readouterr().out


def test_a_rollback_to_the_round_data_is_at_already_makes_no_commit(tmp_path, capsys):
    from crowdloop.tasks import journal, version

    made = _small_campaign(tmp_path)
    before = version.head(made)
    assert cli.main(["-C", str(made.root), "rollback", "0"]) == 0
    assert "nothing to roll back, no commit made" in capsys.readouterr().out
    assert version.head(made) == before and journal.read(made) is None
    version.tag(made, version.round_tag(1))  # a later round's tag: rolling back to 0 archives it, a commit
    assert cli.main(["-C", str(made.root), "rollback", "0"]) == 0
    out = capsys.readouterr().out
    assert "data/ restored to round 0" in out
    assert "; 1 later round tag (round-001) is kept as archived/round-NNN-<commit>." in out
    assert version.head(made) != before and version.round_tags(made) == ["round-000"]
    assert cli.main(["-C", str(made.root), "rollback", "0"]) == 0  # and now it is round 0's, with no later tag
    assert "nothing to roll back" in capsys.readouterr().out


def test_a_rollback_with_no_later_round_tag_says_none_was_archived(tmp_path, capsys):
    from crowdloop.tasks import store

    made = _small_campaign(tmp_path)
    pool = store.read_examples(made).query("split == 'pool'")["example_id"]
    answers = tmp_path / "answers.csv"
    pd.DataFrame({"example_id": pool[:3], "annotator_id": "late", "label": "billing"}).to_csv(answers, index=False)
    assert cli.main(["-C", str(made.root), "ingest", str(answers)]) == 0  # data/ moves on; no round is tagged
    capsys.readouterr()
    assert cli.main(["-C", str(made.root), "rollback", "0"]) == 0
    out = capsys.readouterr().out
    assert "data/ restored to round 0" in out and "no longer in data/: 3 annotations" in out, out
    assert "archived" not in out and "tag" not in out, out  # was "later round tags are kept as archived/round-*"


def test_a_rollback_that_fails_is_undone_not_retried_by_every_later_command(tmp_path, monkeypatch, capsys):
    from crowdloop.tasks import journal, version

    made = _small_campaign(tmp_path)
    version.tag(made, version.round_tag(1))  # a later round: rolling back to 0 is not a no-op
    before = version.head(made)
    calls = []
    def unreachable(campaign, number, *, remote=None):
        calls.append(number)
        (campaign.data / "half-written.csv").write_text("x\n")
        raise version.VersionError("the DVC remote cannot be reached")

    monkeypatch.setattr(version, "rollback", unreachable)
    _refused(capsys, ["-C", str(made.root), "rollback", "0"], "the DVC remote cannot be reached")
    assert calls == [0]  # tried once, by the command; not again by its clean-up
    assert journal.read(made) is None and version.head(made) == before
    assert not (made.data / "half-written.csv").exists() and not version.changed_data(made)
    assert cli.main(["-C", str(made.root), "verify"]) == 0


def test_a_journaled_rollback_whose_round_is_gone_is_undone(tmp_path):
    from crowdloop.tasks import journal, recovery, version

    made = _small_campaign(tmp_path)
    journal.start(made, {"command": "rollback", "pid": 1, "head": version.head(made), "since": "then",
                         "parts": [], "target": 99, "remote": None})
    assert "after a rollback to round 99 that failed" in recovery.recover(made)
    assert journal.read(made) is None


def test_a_rollback_whose_commit_fails_leaves_every_round_tag_and_data_as_they_were(tmp_path, monkeypatch, capsys):
    from crowdloop.tasks import journal, version

    made = _small_campaign(tmp_path)
    version.tag(made, version.round_tag(1))  # a later round, whose tag a rollback to 0 would archive
    before, real = version.head(made), version.run

    def run(args, *rest, **kwargs):
        if args[:2] == ["git", "commit"]:
            raise version.VersionError("git commit failed: no space left on device")
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(version, "run", run)
    _refused(capsys, ["-C", str(made.root), "rollback", "0"], "no space left on device")
    assert version.round_tags(made) == ["round-000", "round-001"]
    assert journal.read(made) is None and version.head(made) == before and not version.changed_data(made)


def test_a_round_s_line_names_no_test_score_when_the_campaign_has_no_test_split():
    from crowdloop import rounds_cmd

    metrics = {"annotations": 40, "batch_size": 8}
    seconds = {"plan": 1.25, "record": 0.5}
    scored = rounds_cmd.round_line(3, {**metrics, "test_accuracy": 0.8125, "test_macro_f1": 0.75}, seconds)
    assert scored == ("round 3: test accuracy 0.812, macro-F1 0.750, 40 annotations, batch of 8 -> "
                      "data/rounds/003/batch.csv  [plan 1.2s, record 0.5s]")
    for unscored in ({**metrics}, {**metrics, "test_accuracy": float("nan"), "test_macro_f1": float("nan")}):
        assert rounds_cmd.round_line(3, unscored, seconds).startswith("round 3: no test split to score, 40 annotations")


def test_prefect_and_mlflow_log_warnings_only_unless_verbose_or_set_by_the_user(monkeypatch, capsys):
    for name in ("PREFECT_LOGGING_LEVEL", "MLFLOW_LOGGING_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    cli.main(["-C", "/nonexistent", "status"])
    assert os.environ["PREFECT_LOGGING_LEVEL"] == os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL")
    monkeypatch.setenv("PREFECT_LOGGING_LEVEL", "ERROR")  # the user's own choice stays
    cli.main(["-v", "-C", "/nonexistent", "status"])
    assert (os.environ["PREFECT_LOGGING_LEVEL"], os.environ["MLFLOW_LOGGING_LEVEL"]) == ("ERROR", "INFO")


@pytest.mark.parametrize("classes", [["1", "2"], ["0", "1", "2"], ["yes", "no"], ["a: b", "[c]"]])
def test_init_writes_the_class_names_it_is_given_even_those_yaml_would_read_as_numbers(classes):
    import yaml

    from crowdloop import campaign

    assert yaml.safe_load(campaign.render_params(classes=classes, seed=0))["classes"] == classes


def test_simulate_from_python_says_a_missing_params_file_is_missing(tmp_path):
    import crowdloop

    source = _crowd_file(tmp_path)[1]
    with pytest.raises(crowdloop.CrowdloopError, match="nope.yaml: no such params file") as err:
        crowdloop.simulate(source, format="long", params=tmp_path / "nope.yaml", out=tmp_path / "o",
                           example_col="item", annotator_col="worker", label_col="answer", gold_col="truth")
    assert "crowdloop init" not in str(err.value) and not (tmp_path / "o").exists()


def test_ctrl_c_is_one_line_and_exit_status_130(monkeypatch, capsys):
    """Ctrl-C in a round on a Dask cluster printed 229 lines: a KeyboardInterrupt traceback through Dask
    pickling a fit job, with a PicklingError about round_flow on the way."""
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_status", interrupted)
    try:
        code = cli.main(["status"])
    except KeyboardInterrupt:  # caught here, so that it does not stop the test run
        pytest.fail("Ctrl-C left the command as a traceback")
    assert code == 130
    assert capsys.readouterr().err.splitlines() == [
        "crowdloop: stopped by Ctrl-C; the next command in the campaign, or `crowdloop verify`, finishes or undoes "
        "what it left: answers an ingest stored are committed, a round not yet committed is removed."]


def test_the_campaign_is_found_from_any_folder_inside_it(tmp_path):
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "campaigns" / "demo"
    for root in (outer, inner):
        (root / "data" / "rounds" / "001").mkdir(parents=True)
        (root / "params.yaml").write_text("seed: 0\n")
        (root / "data" / "examples.parquet").write_bytes(b"")
    clone = tmp_path / "clone"
    (clone / "exports").mkdir(parents=True)
    (clone / "params.yaml").write_text("seed: 0\n")
    (clone / "data.dvc").write_text("outs: []\n")  # a clone before `crowdloop pull`: no data/ yet
    assert cli.enclosing_campaign(inner / "data" / "rounds" / "001") == inner  # the nearest, not the outer one
    assert cli.enclosing_campaign(outer / "campaigns") == outer
    assert cli.enclosing_campaign(outer) == outer
    assert cli.enclosing_campaign(clone / "exports") == clone
    assert cli.enclosing_campaign(tmp_path) == tmp_path  # none: the folder itself, for the error to name
