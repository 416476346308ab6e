"""What each params.yaml value may be: the names every choice may take, and the rules.

Kept apart from :mod:`crowdloop.tasks.config` (the dataclasses and the loading) so that
the two stay small; modules that need a list of choices import it from here.
"""

from __future__ import annotations

import importlib
import posixpath
from pathlib import Path
from typing import Sequence

from crowdloop.tasks.errors import ConfigError

BACKENDS = ("auto", "head", "finetune")
# tasks/consensus: majority.py, crowdlab.py (cleanlab) and crowdkit.py METHODS (crowd-kit), named here to keep loading light
CONSENSUS_METHODS = ("crowdlab", "majority", "dawid_skene", "one_coin_dawid_skene", "glad", "mace", "wawa",
                     "zero_based_skill")
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
# schedule.inbox may not be inside these (a round moves aside every file it finds there), the campaign nor outside it
INBOX_BANNED = ("data", ".git", ".dvc", "mlruns")
DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")  # compute.dask_address: dask.distributed's protocols
NO_SIGNAL_STRATEGIES = ("agreement", "good_random", "random")  # model-free: what `auto` uses without signal
# What `auto` uses with signal: the strategies that read the model (cold_start reads only embeddings).
SIGNAL_STRATEGIES = tuple(s for s in STRATEGIES if s not in ("auto", "cold_start", *NO_SIGNAL_STRATEGIES))
# 'name' is an MLflow experiment and registered model and a Prefect deployment: what none of them takes.
NAME_BANNED = "/:%&<>"
NAME_MAX = 500  # MLflow's longest experiment name


def validate(config, source: str) -> None:
    """Fail with ConfigError (file and key) on the first value of ``config`` (a config.Config) that breaks a rule."""
    address = config.compute.dask_address
    address_problem = None if address is None else dask_address_problem(address)
    name_trouble = None if config.name is None else name_problem(config.name)
    checks = [
        (name_trouble is None, f"'name' {name_trouble}"),
        (config.seed >= 0, "'seed' must be a whole number of at least 0 (every random step derives its seed from it)"),
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
        (config.score.signal_strategy in SIGNAL_STRATEGIES,
         f"'score.signal_strategy' must be one of {', '.join(SIGNAL_STRATEGIES)}"),
        (config.score.no_signal_strategy in NO_SIGNAL_STRATEGIES,
         f"'score.no_signal_strategy' must be one of {', '.join(NO_SIGNAL_STRATEGIES)}"),
        (config.predict.folds >= 2, "'predict.folds' must be at least 2"),
        (config.predict.chunk_size >= 1, "'predict.chunk_size' must be at least 1"),
        (config.select.batch_size >= 1, "'select.batch_size' must be at least 1"),
        (config.select.max_annotations_per_example >= 1,
         "'select.max_annotations_per_example' must be at least 1"),
        (config.model.max_length >= 8, "'model.max_length' must be at least 8"),
        (config.model.minibatch_size >= 1, "'model.minibatch_size' must be at least 1"),
        (config.model.finetune.steps >= 1, "'model.finetune.steps' must be at least 1"),
        (config.model.finetune.learning_rate > 0, "'model.finetune.learning_rate' must be positive"),
        (config.model.finetune.weight_decay >= 0, "'model.finetune.weight_decay' must be >= 0"),
        (0 <= config.model.finetune.warmup_ratio <= 1, "'model.finetune.warmup_ratio' must be in [0, 1]"),
        (config.model.finetune.max_grad_norm is None or config.model.finetune.max_grad_norm > 0,
         "'model.finetune.max_grad_norm' must be null or positive"),
        (config.model.finetune.inference_batch_size >= 1, "'model.finetune.inference_batch_size' must be at least 1"),
        (len(config.model.head.C_grid) >= 1 and min(config.model.head.C_grid) > 0,
         "'model.head.C_grid' needs at least one positive value"),
        (config.model.head.inner_folds >= 2, "'model.head.inner_folds' must be at least 2"),
        (config.model.head.pooling in POOLINGS, f"'model.head.pooling' must be one of {', '.join(POOLINGS)}"),
        (config.compute.workers == "auto" or isinstance(config.compute.workers, int) and config.compute.workers >= 1,
         "'compute.workers' must be auto or a number of at least 1"),
        (address_problem is None, f"'compute.dask_address' {address_problem}"),
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
        (config.routing.min_quality is None or 0 <= config.routing.min_quality <= 1,
         "'routing.min_quality' must be null or a probability in [0, 1]"),
        (config.routing.quality_window >= 1, "'routing.quality_window' must be at least 1"),
        (config.routing.min_labels >= 1, "'routing.min_labels' must be at least 1"),
        # the recent quality is a mean over at most quality_window labels: above it, nobody is ever flagged
        (config.routing.min_labels <= config.routing.quality_window,
         f"'routing.min_labels' ({config.routing.min_labels}) must be at most 'routing.quality_window' "
         f"({config.routing.quality_window}), the most labels an annotator is judged on, or nobody is ever flagged"),
        (config.stopping.metric in STOPPING_METRICS,
         f"'stopping.metric' must be one of {', '.join(STOPPING_METRICS)}"),
        (config.stopping.epsilon >= 0, "'stopping.epsilon' must be >= 0"),
        (config.stopping.rounds >= 1, "'stopping.rounds' must be at least 1"),
        (config.schedule.interval_minutes is None or config.schedule.interval_minutes > 0,
         "'schedule.interval_minutes' must be positive (or null with a 'schedule.cron')"),
        (0 <= config.schedule.min_answered <= 1, "'schedule.min_answered' must be between 0 and 1"),
        (inbox_ok(config.schedule.inbox), "'schedule.inbox' must be a folder inside the campaign (not the "
                                          "campaign itself), outside data/, .git, .dvc and mlruns"),
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


def inbox_ok(inbox: str) -> bool:
    """Whether ``schedule.inbox`` is a folder of its own inside the campaign: not the campaign itself, not
    outside it, not in data/, .git, .dvc or mlruns (``sub/../data`` is data/), whose files a round would move."""
    if not inbox.strip() or Path(inbox).is_absolute():
        return False
    first = Path(posixpath.normpath(inbox.replace("\\", "/"))).parts[:1]
    return bool(first) and first[0] not in (".", "..", *INBOX_BANNED)


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a campaign's name (params.yaml ``name``), as the end of a sentence; None: nothing."""
    if not name.strip() or name != name.strip():
        return f"{name!r} must be a non-empty name without spaces at either end (or null: the directory's name)"
    if len(name) > NAME_MAX or name.startswith("..") or any(c in name for c in NAME_BANNED):
        return (f"{name!r} must be at most {NAME_MAX} characters, not start with '..' and hold none of "
                f"{' '.join(NAME_BANNED)} (MLflow and Prefect refuse them)")
    return None


def dask_address_problem(address: str) -> str | None:
    """What is wrong with a dask.distributed scheduler address, as the end of a sentence; None: nothing."""
    scheme, _, rest = address.strip().rpartition("://")
    host, _, port = rest.rpartition(":")
    if scheme and scheme not in DASK_SCHEMES:
        return f"{address!r} names the protocol {scheme!r}; use one of {', '.join(DASK_SCHEMES)}"
    if not host or not port.isdigit():
        return f"{address!r} is not a scheduler address such as tcp://10.0.0.5:8786"
    if not 0 < int(port) < 65536:
        return f"{address!r} names the port {port}; a port is 1 to 65535"
    return None


def consensus_methods(names: Sequence[str]) -> list[str]:
    """``names`` checked against ``consensus.method``'s choices (``["all"]``: every one), each once."""
    if list(names) == ["all"]:
        return list(CONSENSUS_METHODS)
    if not names:
        raise ConfigError(f"no consensus method given; name one or more of {', '.join(CONSENSUS_METHODS)} "
                          "(comma-separated), or all.")
    if "all" in names:
        raise ConfigError(f"'all' stands for every consensus method, so it stands alone; give all, or names "
                          f"from {', '.join(CONSENSUS_METHODS)} without it.")
    for name in names:
        if name not in CONSENSUS_METHODS:
            raise ConfigError(f"unknown consensus method {name!r}; use one of "
                              f"{', '.join(CONSENSUS_METHODS)} (or all).")
    return list(dict.fromkeys(names))  # a method named twice would be run, and counted, twice


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
