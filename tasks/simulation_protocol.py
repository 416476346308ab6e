"""A simulation's protocol: its arms, the named presets, the checks a protocol must pass before
anything runs, and the config each arm × seed runs with. Pure and light (no Prefect, numpy or
pandas): `crowdloop simulate --help` offers the presets from here, and flows/simulate.py runs them.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from crowdloop.tasks.errors import ConfigError

if TYPE_CHECKING:
    from crowdloop.tasks.config import Config


@dataclass(frozen=True)
class Arm:
    """One arm of a simulation: a ``strategy`` (as score.strategy) with a ``consensus`` method (as
    consensus.method), its curves under ``name``."""

    name: str
    strategy: str
    consensus: str


@dataclass(frozen=True)
class Preset:
    """A simulation protocol: rounds × batch, the start, the limits, the evaluation split, the arms.

    ``test_size``: held out as the gold test split when the data has none. ``evaluate``:
    ``test`` (the gold test split) or ``validation`` (``validation_size`` of the pool,
    carved out, the test split left out: what defaults are chosen on).
    ``answered_by``: who answers a pick: "tutorial" = a random annotator already seen
    among those who hold an answer (the ActiveLab tutorial's protocol); "routed" = the
    annotator that routing chose (by estimated quality, within capacity) among them.
    Either way a flagged annotator (``routing.min_quality``) never answers.
    ``goes_bad``: from this round on, ``bad_annotator`` (None: the one who holds the most
    answers) answers at random (uniform over the classes, seeded): what
    ``routing.min_quality`` should catch.
    """

    rounds: int
    batch_size: int
    n_start: int
    labels_per_start: int
    max_annotations_per_example: int
    folds: int
    arms: tuple[Arm, ...]
    test_size: float | None = 0.25
    answered_by: str = "tutorial"
    evaluate: str = "test"
    validation_size: float = 0.2
    goes_bad: int | None = None
    bad_annotator: str | None = None


DEFAULT = Arm("auto", strategy="auto", consensus="crowdlab")  # params.yaml's default strategy
RANDOM = Arm("random", strategy="random", consensus="majority")


def arm(strategy: str, consensus: str | None = None) -> Arm:
    """The arm that runs ``strategy``: CROWDLAB consensus, except ``random`` (majority vote, as in
    the ActiveLab tutorial). A ``module:function`` arm is named ``module.function``. With a
    ``consensus`` method (the bake-off, ``--consensus``) the arm is named ``strategy+method``."""
    name = strategy.replace(":", ".")
    if consensus is not None:
        return Arm(f"{name}+{consensus}", strategy=strategy, consensus=consensus)
    if strategy == RANDOM.strategy:
        return RANDOM
    return Arm(name, strategy=strategy, consensus="crowdlab")


PRESETS = {
    # The cleanlab ActiveLab tutorial: 100 examples × 2 labels, 25 rounds × 25 annotations.
    "tutorial": Preset(rounds=25, batch_size=25, n_start=100, labels_per_start=2,
                       max_annotations_per_example=5, folds=3, arms=(DEFAULT, RANDOM)),
    # Sparse labels (used for RTE and the held-back sets): 100 items × 1 label, 20 rounds × 20.
    "rte": Preset(rounds=20, batch_size=20, n_start=100, labels_per_start=1,
                  max_annotations_per_example=5, folds=3, arms=(DEFAULT, RANDOM)),
}
# What `crowdloop simulate` flags may change in a preset (the rest stay the named bundle's).
PROTOCOL_FLAGS = ("rounds", "batch_size", "n_start", "labels_per_start", "max_annotations_per_example", "folds",
                  "test_size", "answered_by", "evaluate", "validation_size", "goes_bad", "bad_annotator")
# The least value of each whole-number field, and the flag that sets a field where it is not
# the field's name with dashes (for error messages).
_AT_LEAST = {"rounds": 1, "batch_size": 1, "n_start": 0, "labels_per_start": 1, "max_annotations_per_example": 1,
             "folds": 2}
_FLAG = {"n_start": "--start-size", "max_annotations_per_example": "--max-annotations"}
ANSWERED_BY = ("tutorial", "routed")  # Preset.answered_by: who answers a pick (see Preset)
EVALUATE = ("test", "validation")  # Preset.evaluate: what a simulation scores on (tasks/replay_split.py)


def _whole(value) -> bool:  # numpy's integers are numbers.Integral too
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _fraction(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)) and 0 < value < 1


def check_simulation(preset: Preset, *, seeds: int, target: float, metric: str) -> None:
    """Raise ConfigError, naming the flag, if ``preset`` with ``seeds`` seeds cannot be run as a
    simulation, or ``target`` is no value of ``metric`` (a share, 0 to 1)."""
    if not _whole(seeds) or seeds < 1:
        raise ConfigError(f"--seeds is {seeds!r}; run at least 1 seed per arm.")
    if not preset.arms:
        raise ConfigError("--strategies names no strategy; give one or more, comma-separated (e.g. auto,random), "
                          "or all.")
    names = [a.name for a in preset.arms]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"the arm {twice!r} is named twice; name each strategy and consensus method once.")
    if not 0 < target <= 1:
        raise ConfigError(f"--target is {target!r}; give a {metric} value above 0 and at most 1.")
    for field, low in _AT_LEAST.items():
        value = getattr(preset, field)
        if not _whole(value) or value < low:
            flag = _FLAG.get(field, "--" + field.replace("_", "-"))
            raise ConfigError(f"{flag} is {value!r}; it must be a whole number of at least {low}.")
    if preset.labels_per_start > preset.max_annotations_per_example:
        raise ConfigError(f"--labels-per-start {preset.labels_per_start} is more than --max-annotations "
                          f"{preset.max_annotations_per_example}; lower the one or raise the other.")
    test_size = preset.test_size  # from Python also a count of examples; the flag takes a fraction
    if not (test_size is None or _fraction(test_size) or _whole(test_size) and test_size >= 1):
        raise ConfigError(f"--test-size is {test_size!r}; give a fraction strictly between 0 and 1.")
    if not _fraction(preset.validation_size):
        raise ConfigError(f"--validation-size is {preset.validation_size!r}; give a fraction strictly between 0 and 1.")
    for field, allowed in {"evaluate": EVALUATE, "answered_by": ANSWERED_BY}.items():
        if getattr(preset, field) not in allowed:
            raise ConfigError(f"--{field.replace('_', '-')} is {getattr(preset, field)!r}; use {' or '.join(allowed)}.")
    if preset.goes_bad is not None and (not _whole(preset.goes_bad) or preset.goes_bad < 1):
        raise ConfigError(f"--goes-bad is {preset.goes_bad!r}; name a round, 1 or later.")
    if preset.goes_bad is not None and preset.goes_bad > preset.rounds:
        raise ConfigError(f"--goes-bad {preset.goes_bad} is after the last round ({preset.rounds}): nobody would "
                          f"turn bad; name a round from 1 to {preset.rounds}.")
    if preset.bad_annotator is not None and preset.goes_bad is None:
        raise ConfigError("--bad-annotator is given without --goes-bad; say from which round they answer at random.")


def arm_config(base: Config, preset: Preset, arm: Arm, *, seed: int,
               classes: Sequence[str]) -> Config:
    """The round config one arm × seed runs with."""
    return dataclasses.replace(
        base, seed=seed, classes=tuple(classes),
        consensus=dataclasses.replace(base.consensus, method=arm.consensus),
        score=dataclasses.replace(base.score, strategy=arm.strategy),
        predict=dataclasses.replace(base.predict, folds=preset.folds),
        select=dataclasses.replace(base.select, batch_size=preset.batch_size,
                                   max_annotations_per_example=preset.max_annotations_per_example),
    )


# Config keys that cannot change what a simulated round decides (compute: where it runs; name: a
# campaign's MLflow experiment): settings.json leaves them out, so adding one keeps a run resumable.
UNUSED_SECTIONS = ("name", "compute", "simulate", "schedule", "tracking", "remote")
# Keys arm_config sets for every arm: what --params says there is never read, so settings.json leaves
# them out too (a run made with other values there resumes).
ARM_KEYS = (("seed",), ("classes",), ("consensus", "method"), ("score", "strategy"), ("predict", "folds"),
            ("select", "batch_size"), ("select", "max_annotations_per_example"))


def run_settings(base: Config, preset: Preset) -> dict:
    """What the finished rounds of a simulation depend on, for simulation_store.prepare: the
    preset (its rounds and arms aside: more rounds or another arm extend a run) and params."""
    protocol = {k: v for k, v in dataclasses.asdict(preset).items() if k not in ("rounds", "arms")}
    params = {k: v for k, v in dataclasses.asdict(base).items() if k not in UNUSED_SECTIONS}
    return {"preset": protocol, "params": without_arm_keys(params)}


def without_arm_keys(params: dict) -> dict:
    """``params`` (a run's settings, as settings.json holds them; changed in place) without ARM_KEYS;
    also for a settings.json written before they were left out."""
    for *sections, key in ARM_KEYS:
        held = params
        for section in sections:
            held = held.get(section) if isinstance(held, dict) else None
        if isinstance(held, dict):
            held.pop(key, None)
    return params
