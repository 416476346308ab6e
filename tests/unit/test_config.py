"""params.yaml: the typed config, its overlay on the template and its errors."""

from __future__ import annotations

import dataclasses

import pytest

from crowdloop.tasks import config


def test_template_loads_into_typed_frozen_config():
    cfg = config.load()
    assert cfg.classes == ("billing", "technical", "shipping", "account")
    assert cfg.model.head.C_grid == (0.1, 1.0, 10.0, 100.0)
    assert isinstance(cfg.model.finetune.learning_rate, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3


def test_the_campaign_s_name_is_a_typed_key_null_in_the_template(tmp_path):
    assert config.load().name is None  # the directory's name, for campaigns made before the key
    path = tmp_path / "params.yaml"
    path.write_text("name: demo6\n")
    assert config.load(path).name == "demo6"


def test_campaign_file_overrides_only_the_keys_it_names(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 7\nselect:\n  batch_size: 10\n")
    cfg = config.load(path)
    assert cfg.seed == 7
    assert cfg.select.batch_size == 10
    assert cfg.select.max_annotations_per_example == config.load().select.max_annotations_per_example


def test_mappings_in_params_yaml_take_the_users_keys(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("budget:\n  annotator_costs: {ann: 0.5, expert1: 3}\n"
                    "labelstudio:\n  annotator_id: table\n  annotators: {7: ann3, bo@example.org: ann4}\n")
    cfg = config.load(path)
    assert cfg.budget.annotator_costs == {"ann": 0.5, "expert1": 3.0}
    assert cfg.labelstudio.annotators == {"7": "ann3", "bo@example.org": "ann4"}
    assert cfg.budget.cost_per_annotation == config.load().budget.cost_per_annotation


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("selct:\n  batch_size: 3\n", "unknown key 'selct'"),
        ("select:\n  batchsize: 3\n", "unknown key 'select.batchsize'"),
        ("select:\n  batch_size: many\n", "'select.batch_size' must be int"),
        ("model:\n  backend: gpu\n", "'model.backend' must be one of"),
        ("consensus:\n  crowdlab_label: vote\n", "'consensus.crowdlab_label' must be one of majority_vote, best_quality"),
        ("model:\n  sample_weights: votes\n", "'model.sample_weights' must be one of consensus_quality, none"),
        ("model:\n  head:\n    ngrams: sometimes\n", "'model.head.ngrams' must be bool"),
        ("model:\n  head:\n    pooling: cls\n", "'model.head.pooling' must be one of layers, last"),
        ("score:\n  strategy: magic\n", "unknown 'score.strategy' 'magic'; known: auto, activelab"),
        ("score:\n  signal_strategy: random\n", "'score.signal_strategy' must be one of activelab, activelab_ensemble, "
         "least_confidence, margin, entropy, coreset, badge, qbc, bald"),
        ("seed: -1\n", "'seed' must be a whole number of at least 0"),
        ("budget:\n  anotations: 3\n", "unknown key 'budget.anotations'; known keys here: annotations,"),
        ("budget:\n  annotator_costs: {ann: -1}\n", "costs per annotation must be >= 0"),
        ("budget:\n  annotator_costs: {ann: cheap}\n", "'budget.annotator_costs.ann' must be float"),
        ("predict:\n  folds: 1\n", "'predict.folds' must be at least 2"),
        ("predict:\n  chunk_size: 0\n", "'predict.chunk_size' must be at least 1"),
        ("model:\n  finetune:\n    max_grad_norm: 0\n", "'model.finetune.max_grad_norm' must be null or positive"),
        ("model:\n  finetune:\n    inference_batch_size: 0\n",
         "'model.finetune.inference_batch_size' must be at least 1"),
        ("model:\n  finetune:\n    warmup_ratio: 1.5\n", "'model.finetune.warmup_ratio' must be in [0, 1]"),
        ("classes: [a, a]\n", "repeated"),
        ("seed: [1\n", "not valid YAML"),
        ("seed: 0\nmodel:\n\tbackend: head\n", "not valid YAML (line 3, column 1: found character '\\t' that "
         "cannot start any token, while scanning for the next token)"),
        ("classes: [a, b\nseed: 1\n", "not valid YAML (line 2, column 5: expected ',' or ']', but got ':', "
         "while parsing a flow sequence)"),
        ("schedule:\n  min_answered: 1.5\n", "'schedule.min_answered' must be between 0 and 1"),
        ("schedule:\n  interval_minutes: 0\n", "'schedule.interval_minutes' must be positive"),
        ("schedule:\n  inbox: data/inbox\n", "outside data/"),
        ("schedule:\n  inbox: ../elsewhere\n", "inside the campaign"),
        # a round moves every file it finds in the inbox: '.' was an IndexError, the others were allowed
        ("schedule:\n  inbox: .\n", "not the campaign itself"),
        ("schedule:\n  inbox: ./\n", "not the campaign itself"),
        ("schedule:\n  inbox: in/../data\n", "outside data/"),
        ("schedule:\n  inbox: in/../../elsewhere\n", "inside the campaign"),
        ("schedule:\n  inbox: .git\n", "outside data/, .git, .dvc and mlruns"),
        ("schedule:\n  inbox: mlruns\n", "outside data/, .git, .dvc and mlruns"),
        ("tracking:\n  register: maybe\n", "'tracking.register' must be bool"),
        ("model:\n  batch_size: 16\n", "'model.batch_size' is now called 'model.minibatch_size'"),
        ("compute:\n  workers: 0\n", "'compute.workers' must be auto or a number of at least 1"),
        ("compute:\n  workers: all\n", "'compute.workers' must be auto or a number of at least 1"),
        ("compute:\n  dask_address: http://10.0.0.5:8786\n", "'compute.dask_address' 'http://10.0.0.5:8786' names "
                                                             "the protocol 'http'; use one of tcp"),
        ("compute:\n  dask_address: scheduler\n", "is not a scheduler address such as tcp://10.0.0.5:8786"),
        ("consensus:\n  method: dawid_skeen\n",
         "'consensus.method' must be one of crowdlab, majority, dawid_skene, one_coin_dawid_skene, glad, mace"),
        ("routing:\n  min_quality: 1.5\n", "'routing.min_quality' must be null or a probability in [0, 1]"),
        ("routing:\n  quality_window: 0\n", "'routing.quality_window' must be at least 1"),
        ("routing:\n  min_labels: 0\n", "'routing.min_labels' must be at least 1"),
        # never reached: the recent quality is a mean over at most quality_window labels, so nobody was flagged
        ("routing:\n  min_labels: 30\n", "'routing.min_labels' (30) must be at most 'routing.quality_window' (20)"),
        ("routing:\n  min_labels: true\n", "'routing.min_labels' must be int, got True"),  # was read as 1
        ("name: ''\n", "'name' '' must be a non-empty name"),
        ("name: 'demo/6'\n", "(MLflow and Prefect refuse them)"),
        ("name: 2024\n", "'name' must be str, got 2024"),
        # PyYAML keeps the last of a repeated key, which DVC then refuses as corrupted after the round ran
        ("select:\n  batch_size: 25\n  batch_size: 40\n",
         "line 3, column 3: key 'batch_size' appears twice in one section (first on line 2); keep one"),
        ("seed: 1\nselect: {batch_size: 5}\nseed: 2\n", "line 3, column 1: key 'seed' appears twice"),
    ],
)
def test_bad_params_fail_with_file_and_key(tmp_path, text, fragment):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)  # one line


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(config.ConfigError, match="crowdloop init"):
        config.load(tmp_path / "nope.yaml")


def test_to_dict_round_trips():
    cfg = config.load()
    assert config.from_dict(cfg.to_dict()) == cfg


def test_every_config_error_is_a_crowdloop_error_the_cli_prints_as_one_line():
    from crowdloop.tasks import errors, import_values, ingest, version

    for error in (config.ConfigError, errors.CampaignError, errors.DataError, ingest.IngestError,
                  import_values.ImportFormatError, version.VersionError):
        assert issubclass(error, errors.CrowdloopError)
