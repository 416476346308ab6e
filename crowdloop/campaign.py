"""Making a campaign: a directory with params.yaml, data/, and its own git + DVC repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd
import yaml

from crowdloop.examples_file import check_examples
from crowdloop.tasks import config as config_mod
from crowdloop.tasks import store, typed_yaml, version
from crowdloop.tasks.config_checks import name_problem
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.import_values import Origin
from crowdloop.tasks.schema import ANNOTATION_COLUMNS, ANSWER_COLUMNS

# Sections a round reads: what dvc.yaml lists so `dvc params diff` shows them.
ROUND_PARAMS = ["seed", "classes", "consensus", "model", "predict", "score", "select", "budget", "routing",
                "stopping", "ingest"]  # ingest.on_change decides which stored answers a round counts


def render_params(*, classes: Sequence[str], seed: int, name: str | None = None, overrides: dict | None = None) -> str:
    """The template params.yaml with this campaign's name, classes and seed, comments kept; with
    ``overrides`` (a nested dict of params.yaml keys) laid over it, as plain YAML."""
    text = config_mod.template_text()
    if name is not None:  # quoted where YAML needs it (a name such as 2024 or yes)
        text = re.sub(r"(?m)^name: null", lambda _: yaml.safe_dump({"name": name}, width=1 << 20).strip(), text,
                      count=1)
    # quoted where YAML needs it: classes 1,2 or yes,no stay the strings "1" and "yes", "a: b" stays one name
    listed = yaml.safe_dump([str(c) for c in classes], default_flow_style=True, allow_unicode=True, width=1 << 20)
    text = re.sub(r"(?m)^classes: \[.*\]$", lambda _: "classes: " + listed.strip(), text, count=1)
    text = re.sub(r"(?m)^seed: \d+", f"seed: {seed}", text, count=1)
    if not overrides:
        return text
    merged = typed_yaml.overlay(yaml.safe_load(text), overrides, Path("params"), cls=config_mod.Config,
                                renamed=config_mod.RENAMED)
    return ("# crowdloop parameters (the template's comments say what each key does:\n"
            "# params.yaml in the crowdloop repository)\n" + yaml.safe_dump(merged, sort_keys=False))


def init_campaign(
    root: Path,
    examples: pd.DataFrame,
    *,
    classes: Sequence[str],
    seed: int = 0,
    initial: pd.DataFrame | None = None,
    simulator: pd.DataFrame | None = None,
    params: dict | None = None,
) -> store.Campaign:
    """Write a new campaign at ``root`` and commit it as round 0 (tag ``round-000``).

    ``examples`` has schema.EXAMPLE_COLUMNS; ``initial`` (schema.ANSWER_COLUMNS) are
    annotations already collected; ``simulator`` the simulated annotators' uncollected
    answers (demo campaigns); ``params`` settings laid over the template params.yaml
    (a nested dict, e.g. ``{"select": {"batch_size": 50}}``).
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise CampaignError(f"{root} exists and is not empty; choose a new directory.")
    check_classes(classes)
    name = root.resolve().name  # the campaign keeps it through a clone or a move (params.yaml `name`)
    if name_problem(name) is not None and "name" not in (params or {}):
        raise CampaignError(f"{root}: the directory's name becomes the campaign's name (its MLflow experiment and "
                            f"registered model), and {name_problem(name)}; choose another directory.")
    text = render_params(classes=classes, seed=seed, name=name, overrides=params)
    config = config_mod.from_dict(yaml.safe_load(text), source=str(root / "params.yaml"))
    _check_examples(examples, classes)
    if initial is not None:
        initial = _checked_initial(initial, examples, config)
    campaign = store.Campaign(root)
    root.mkdir(parents=True, exist_ok=True)
    store.write_params(campaign, text)
    store.write_examples(campaign, examples)
    if initial is not None:
        store.append_annotations(campaign, initial, round=0, source="initial")
    if simulator is not None:
        store.write_simulator_answers(campaign, simulator)
    version.init_repo(campaign, param_sections=ROUND_PARAMS)
    version.commit(campaign, "Round 0: initial campaign data", tag=version.round_tag(0))
    return campaign


def init_demo(root: Path, *, seed: int = 0, params: dict | None = None) -> store.Campaign:
    """A demo support-ticket campaign generated from ``seed`` (offline, deterministic);
    ``params`` as for :func:`init_campaign`."""
    from crowdloop.tasks import demo

    data = demo.make_demo(seed=seed)
    classes = config_mod.load().classes
    return init_campaign(root, data.examples, classes=classes, seed=seed, initial=data.initial,
                         simulator=data.answers, params=params)


def _checked_initial(initial: pd.DataFrame, examples: pd.DataFrame, config: config_mod.Config) -> pd.DataFrame:
    """``initial`` (ANSWER_COLUMNS) through the checks of an ingest (row N of the frame is its line N):
    the answers to store, each once; CampaignError or IngestError for the first that an ingest refuses."""
    from crowdloop.tasks.ingest import validate_answers

    missing = [c for c in ANSWER_COLUMNS if c not in initial.columns]
    if missing:
        raise CampaignError(f"the initial answers lack the column '{missing[0]}'; give {', '.join(ANSWER_COLUMNS)}.")
    rows = initial.loc[:, list(ANSWER_COLUMNS)].assign(line=range(1, len(initial) + 1))
    return validate_answers(rows, source="initial answers", examples=examples,
                            stored=pd.DataFrame(columns=list(ANNOTATION_COLUMNS)), classes=config.classes,
                            on_change=config.ingest.on_change).new


def check_classes(classes: Sequence[str], *, given_as: str = "classes") -> None:
    """Fail with CampaignError, naming the argument as ``given_as`` (``--classes`` on the command
    line), unless ``classes`` is a list of at least two distinct class names."""
    if isinstance(classes, str):  # a str is a Sequence: "spam,ham" would be 8 one-letter classes
        raise CampaignError(f"{given_as} is the string {classes!r}; pass a list of class names, e.g. ['spam', 'ham'].")
    if len(classes) < 2:
        raise CampaignError(f"{given_as} needs at least two class names (got {', '.join(classes) or 'none'}).")
    repeated = [c for i, c in enumerate(classes) if c in classes[:i]]
    if repeated:
        raise CampaignError(f"{given_as} names the class '{repeated[0]}' twice; give each class once.")


def _check_examples(examples: pd.DataFrame, classes: Sequence[str]) -> None:
    check_examples(examples, origin=Origin("examples"), classes=classes)
    if (examples["split"] == "pool").sum() < 2:
        raise CampaignError("a campaign needs at least two pool examples.")

