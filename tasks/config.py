"""The typed configuration: frozen dataclasses mirroring ``params.yaml``.

``params.yaml`` at the project root is the template, the only place defaults are written; a campaign's own is laid
over it key by key, so an older campaign keeps working when keys appear. Unknown keys and wrong types fail with the
file and key; a renamed key with its new name (:data:`RENAMED`). Typed loading: :mod:`crowdloop.tasks.typed_yaml`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from crowdloop.tasks import typed_yaml
from crowdloop.tasks.config_checks import validate
from crowdloop.tasks.errors import ConfigError

PARAMS_FILE = "params.yaml"
# Keys that have a new name: {old dotted key: new dotted key}.
RENAMED = {"model.batch_size": "model.minibatch_size"}


@dataclass(frozen=True)
class ConsensusConfig:
    method: str
    calibrate_probs: bool
    crowdlab_label: str
    require_signal: bool


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
    max_grad_norm: float | None  # per model; None: no clipping
    inference_batch_size: int


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
    chunk_size: int


@dataclass(frozen=True)
class ScoreConfig:
    strategy: str
    signal_strategy: str
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
class ComputeConfig:  # flows/compute.py
    workers: int | str  # "auto" (one per core) or a number
    dask_address: str | None  # a dask.distributed scheduler; $CROWDLOOP_DASK_ADDRESS wins


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
    min_quality: float | None  # tasks/annotator_watch.py: no more requests below this recent label quality
    quality_window: int
    min_labels: int


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
    name: str | None  # the campaign's MLflow experiment and registered model; None: its directory's name
    seed: int
    classes: tuple[str, ...]
    consensus: ConsensusConfig
    model: ModelConfig
    predict: PredictConfig
    score: ScoreConfig
    select: SelectConfig
    compute: ComputeConfig
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
            user = yaml.load(path.read_text(), Loader=typed_yaml.UniqueKeyLoader) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({_yaml_problem(err)}).") from err
        if not isinstance(user, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections.")
        merged = typed_yaml.overlay(merged, user, path, cls=Config, renamed=RENAMED)
    return from_dict(merged, source=str(path or "params.yaml template"))


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (``line 2, column 1: found character '\\t' ...``)."""
    mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None)
    if mark is None or not problem:
        return " ".join(str(err).split())
    context = getattr(err, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f", {context}" if context else "")


def from_dict(raw: dict, *, source: str = "params") -> Config:
    """Build and validate a :class:`Config` from a nested dict."""
    config = typed_yaml.build(Config, raw, source)
    validate(config, source)
    return config
