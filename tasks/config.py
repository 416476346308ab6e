"""The typed configuration: frozen dataclasses mirroring ``params.yaml``.

``params.yaml`` at the project root is the template, the only place defaults are written; a campaign's own is laid
over it key by key, so an older campaign keeps working when keys appear. Unknown keys and wrong types fail with the
file and key; a renamed key with its new name (:data:`RENAMED`). Typed loading: :mod:`crowdloop.tasks.typed_yaml`.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from crowdloop.tasks import typed_yaml
from crowdloop.tasks.errors import ConfigError

PARAMS_FILE = "params.yaml"
BACKENDS = ("auto", "head", "finetune")
CONSENSUS_METHODS = ("crowdlab", "majority")
CROWDLAB_LABELS = ("majority_vote", "best_quality")  # cleanlab's consensus_method
SAMPLE_WEIGHTS = ("consensus_quality", "none")
CLASS_WEIGHTS = ("none", "balanced")
POOLINGS = ("layers", "last")  # tasks/models/head.py: how a text becomes one vector
ANNOTATOR_IDS = ("user_id", "email", "table")  # labelstudio.annotator_id: where an annotator's id comes from
# tasks/scoring/strategies.py BUILTIN (and auto), named here so loading params.yaml stays light.
STRATEGIES = ("auto", "activelab", "activelab_ensemble", "random", "good_random", "agreement",
              "least_confidence", "margin", "entropy", "coreset", "badge", "qbc", "bald", "cold_start")
STOPPING_METRICS = ("macro_f1", "accuracy", "balanced_accuracy")  # what tasks/stopping.py reads
ON_CHANGE = ("reject", "keep_both", "latest")  # ingest.on_change: an annotator changing an answer
NO_SIGNAL_STRATEGIES = ("agreement", "good_random", "random")  # model-free: what `auto` uses without signal


# Keys that have a new name: {old dotted key: new dotted key}.
RENAMED = {"model.batch_size": "model.minibatch_size"}


@dataclass(frozen=True)
class ConsensusConfig:
    method: str
    calibrate_probs: bool
    crowdlab_label: str


@dataclass(frozen=True)
class HeadConfig:
    C_grid: tuple[float, ...]
    inner_folds: int
    ngrams: bool
    pooling: str
    pairs: bool


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int
    learning_rate: float
    weight_decay: float
    warmup_ratio: float


@dataclass(frozen=True)
class ModelConfig:
    backend: str
    name: str | None
    max_length: int
    minibatch_size: int  # texts per forward (and backward) pass; not select.batch_size
    sample_weights: str
    class_weight: str
    head: HeadConfig
    finetune: FinetuneConfig


@dataclass(frozen=True)
class PredictConfig:
    folds: int


@dataclass(frozen=True)
class ScoreConfig:
    strategy: str
    no_signal_strategy: str
    cold_start: bool
    mc_dropout_passes: int


@dataclass(frozen=True)
class SelectConfig:
    batch_size: int
    max_annotations_per_example: int
    duplicate_threshold: float | None
    kcenter_weight: float


@dataclass(frozen=True)
class SimulateConfig:
    rounds: int


@dataclass(frozen=True)
class BudgetConfig:
    annotations: int | None
    money: float | None
    cost_per_annotation: float
    annotator_costs: dict[str, float]


@dataclass(frozen=True)
class RoutingConfig:
    capacity_per_annotator: int | None


@dataclass(frozen=True)
class StoppingConfig:
    metric: str
    epsilon: float
    rounds: int


@dataclass(frozen=True)
class ScheduleConfig:
    interval_minutes: float | None
    cron: str | None
    min_answered: float
    inbox: str


@dataclass(frozen=True)
class TrackingConfig:
    uri: str | None
    register: bool


@dataclass(frozen=True)
class IngestConfig:
    on_change: str


@dataclass(frozen=True)
class LockConfig:  # tasks/lock.py
    timeout_seconds: float


@dataclass(frozen=True)
class RemoteConfig:
    url: str | None


@dataclass(frozen=True)
class LabelStudioConfig:
    project: str | int | None  # a title or a project number
    annotator_id: str
    annotators: dict[str, str]  # keys are user numbers (as text) or emails


@dataclass(frozen=True)
class Config:
    seed: int
    classes: tuple[str, ...]
    consensus: ConsensusConfig
    model: ModelConfig
    predict: PredictConfig
    score: ScoreConfig
    select: SelectConfig
    simulate: SimulateConfig
    budget: BudgetConfig
    routing: RoutingConfig
    stopping: StoppingConfig
    schedule: ScheduleConfig
    tracking: TrackingConfig
    ingest: IngestConfig
    lock: LockConfig
    remote: RemoteConfig
    labelstudio: LabelStudioConfig

    def to_dict(self) -> dict:
        """Plain nested dict (lists, not tuples): what ``params.yaml`` holds."""
        return typed_yaml.plain(dataclasses.asdict(self))


def template_text() -> str:
    """The shipped ``params.yaml`` (comments included)."""
    return resources.files("crowdloop").joinpath("templates", PARAMS_FILE).read_text()


def load(path: Path | str | None = None) -> Config:
    """Read ``params.yaml`` at ``path`` laid over the template; ``None`` = template only."""
    merged = yaml.safe_load(template_text())
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such file; run `crowdloop init` to make a campaign.")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err}).") from err
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections.")
        merged = typed_yaml.overlay(merged, user, path, renamed=RENAMED)
    return from_dict(merged, source=str(path or "params.yaml template"))


def from_dict(raw: dict, *, source: str = "params") -> Config:
    """Build and validate a :class:`Config` from a nested dict."""
    config = typed_yaml.build(Config, raw, source)
    _validate(config, source)
    return config


def _validate(config: Config, source: str) -> None:
    checks = [
        (len(config.classes) >= 2, "'classes' needs at least two class names"),
        (len(set(config.classes)) == len(config.classes), "'classes' has a repeated name"),
        (config.consensus.method in CONSENSUS_METHODS,
         f"'consensus.method' must be one of {', '.join(CONSENSUS_METHODS)}"),
        (config.consensus.crowdlab_label in CROWDLAB_LABELS,
         f"'consensus.crowdlab_label' must be one of {', '.join(CROWDLAB_LABELS)}"),
        (config.model.backend in BACKENDS, f"'model.backend' must be one of {', '.join(BACKENDS)}"),
        (config.model.sample_weights in SAMPLE_WEIGHTS,
         f"'model.sample_weights' must be one of {', '.join(SAMPLE_WEIGHTS)}"),
        (config.model.class_weight in CLASS_WEIGHTS,
         f"'model.class_weight' must be one of {', '.join(CLASS_WEIGHTS)}"),
        (config.score.mc_dropout_passes >= 2, "'score.mc_dropout_passes' must be at least 2"),
        (config.score.no_signal_strategy in NO_SIGNAL_STRATEGIES,
         f"'score.no_signal_strategy' must be one of {', '.join(NO_SIGNAL_STRATEGIES)}"),
        (config.predict.folds >= 2, "'predict.folds' must be at least 2"),
        (config.select.batch_size >= 1, "'select.batch_size' must be at least 1"),
        (config.select.max_annotations_per_example >= 1,
         "'select.max_annotations_per_example' must be at least 1"),
        (config.model.max_length >= 8, "'model.max_length' must be at least 8"),
        (config.model.minibatch_size >= 1, "'model.minibatch_size' must be at least 1"),
        (config.model.finetune.steps >= 1, "'model.finetune.steps' must be at least 1"),
        (len(config.model.head.C_grid) >= 1 and min(config.model.head.C_grid) > 0,
         "'model.head.C_grid' needs at least one positive value"),
        (config.model.head.inner_folds >= 2, "'model.head.inner_folds' must be at least 2"),
        (config.model.head.pooling in POOLINGS, f"'model.head.pooling' must be one of {', '.join(POOLINGS)}"),
        (config.simulate.rounds >= 1, "'simulate.rounds' must be at least 1"),
        (config.select.duplicate_threshold is None or -1 <= config.select.duplicate_threshold <= 1,
         "'select.duplicate_threshold' must be null or a cosine similarity in [-1, 1]"),
        (0 <= config.select.kcenter_weight <= 1, "'select.kcenter_weight' must be in [0, 1]"),
        (config.budget.annotations is None or config.budget.annotations >= 0,
         "'budget.annotations' must be null or >= 0"),
        (config.budget.money is None or config.budget.money >= 0, "'budget.money' must be null or >= 0"),
        (config.budget.cost_per_annotation >= 0 and min(config.budget.annotator_costs.values(), default=0) >= 0,
         "costs per annotation must be >= 0"),
        (config.routing.capacity_per_annotator is None or config.routing.capacity_per_annotator >= 1,
         "'routing.capacity_per_annotator' must be null or at least 1"),
        (config.stopping.metric in STOPPING_METRICS,
         f"'stopping.metric' must be one of {', '.join(STOPPING_METRICS)}"),
        (config.stopping.epsilon >= 0, "'stopping.epsilon' must be >= 0"),
        (config.stopping.rounds >= 1, "'stopping.rounds' must be at least 1"),
        (config.schedule.interval_minutes is None or config.schedule.interval_minutes > 0,
         "'schedule.interval_minutes' must be positive (or null with a 'schedule.cron')"),
        (0 <= config.schedule.min_answered <= 1, "'schedule.min_answered' must be between 0 and 1"),
        (bool(config.schedule.inbox.strip()) and not Path(config.schedule.inbox).is_absolute()
         and Path(config.schedule.inbox).parts[0] not in ("data", ".."),
         "'schedule.inbox' must be a folder inside the campaign, outside data/"),
        (config.ingest.on_change in ON_CHANGE, f"'ingest.on_change' must be one of {', '.join(ON_CHANGE)}"),
        (config.lock.timeout_seconds >= 0, "'lock.timeout_seconds' must be >= 0"),
        (config.labelstudio.project is None or isinstance(config.labelstudio.project, int)
         or bool(config.labelstudio.project.strip()), "'labelstudio.project' must be null, a title or a number"),
        (config.labelstudio.annotator_id in ANNOTATOR_IDS,
         f"'labelstudio.annotator_id' must be one of {', '.join(ANNOTATOR_IDS)}"),
        (config.labelstudio.annotator_id != "table" or bool(config.labelstudio.annotators),
         "'labelstudio.annotator_id' is table, so 'labelstudio.annotators' needs {user number or email: id} rows"),
        (all(str(v).strip() for v in config.labelstudio.annotators.values()),
         "'labelstudio.annotators' maps a user to an empty annotator id"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{source}: {message}.")
    check_strategy(config.score.strategy, source=source)


def check_strategy(name: str, *, source: str = "params") -> None:
    """Fail unless ``name`` is a built-in strategy or an importable ``module:function``."""
    if name in STRATEGIES:
        return
    if ":" not in name:
        raise ConfigError(f"{source}: unknown 'score.strategy' {name!r}; known: {', '.join(STRATEGIES)}, "
                          "or module:function for your own.")
    load_user_strategy(name, source=source)


def load_user_strategy(name: str, *, source: str = "params"):
    """The function ``module:function`` names (imports the module); ConfigError if there is none."""
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"{source}: 'score.strategy' {name!r}: cannot import {module_name!r} ({err}); "
                          f"known built-in strategies: {', '.join(STRATEGIES)}.") from err
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{source}: 'score.strategy' {name!r}: {module_name} has no function "
                          f"{attribute!r}; known built-in strategies: {', '.join(STRATEGIES)}.")
    return function
