"""`crowdloop status`: the campaign at a glance, read from data/ alone (no servers, no models)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import gate, journal, lock, signal, store

COLUMNS = [("round", "round", "{:>5}"), ("annotations", "annotations", "{:>11}"),
           ("labeled_examples", "labeled", "{:>7}"), ("test_accuracy", "test acc", "{:>8.3f}"),
           ("test_macro_f1", "macro-F1", "{:>8.3f}"), ("test_balanced_accuracy", "bal acc", "{:>7.3f}"),
           ("oos_balanced_accuracy", "oos bal", "{:>7.3f}"), ("mean_consensus_quality", "consensus q", "{:>11.3f}"),
           ("batch_size", "asked", "{:>5}"), ("answered", "answered", "{:>8}"),
           ("unroutable", "unroutable", "{:>10}"), ("stable_rounds", "stable", "{:>6}")]


@dataclass(frozen=True)
class Status:
    """Where a campaign stands; ``str()`` renders what ``crowdloop status`` prints.

    ``rounds``: one dict per completed round, its metrics plus ``round`` and ``answered``
    (requests of its batch with an answer, :func:`crowdloop.tasks.gate.answered`).
    ``progress``: the last round's batch and stopping signal.
    """

    campaign: store.Campaign
    cfg: config_mod.Config
    annotations: int
    annotators: int
    labeled_examples: int
    pool_examples: int
    test_examples: int
    rounds: list[dict]
    progress: gate.Progress
    writer: dict | None = None       # who holds the campaign's lock now (lock.holder), if anyone
    interrupted: dict | None = None  # the journal of a command that was interrupted, if any

    def __str__(self) -> str:
        return render(self)


def collect(root: Path | store.Campaign) -> Status:
    """The :class:`Status` of the campaign at ``root``."""
    campaign = root if isinstance(root, store.Campaign) else store.open_campaign(root)
    cfg = config_mod.load(campaign.params_file)
    annotations = store.read_annotations(campaign)
    examples = store.read_examples(campaign)
    pool = int((examples["split"] == "pool").sum())
    rows = []
    for number in store.completed_rounds(campaign):
        batch_ids = store.read_batch(campaign, number)["example_id"]
        rows.append(store.read_round_metrics(campaign, number)
                    | {"round": number, "answered": gate.answered(batch_ids, annotations, number)})
    return Status(campaign, cfg, len(annotations), int(annotations["annotator_id"].nunique()),
                  int(annotations["example_id"].nunique()), pool, len(examples) - pool, rows,
                  gate.progress(campaign, annotations), writer := lock.busy(campaign),
                  None if writer is not None else journal.read(campaign))


def render(status: Status) -> str:
    campaign, cfg = status.campaign, status.cfg
    lines = [
        f"campaign {campaign.name} ({campaign.root.resolve()})",
        f"  {len(cfg.classes)} classes: {', '.join(cfg.classes)}; strategy {cfg.score.strategy}; "
        f"backend {cfg.model.backend}",
        f"  {status.annotations} annotations by {status.annotators} annotators on "
        f"{status.labeled_examples} of {status.pool_examples} pool examples; "
        f"{status.test_examples} gold test examples",
    ]
    if status.writer is not None:
        lines.append(f"  being written now by {lock.describe(status.writer)}")
    if status.interrupted:
        lines.append(f"  an interrupted `{status.interrupted['command']}` (since {status.interrupted['since']}) is "
                     "pending: the next writing command, or `crowdloop verify`, finishes or undoes it")
    if not status.rounds:
        lines.append("  no round has run yet: `crowdloop round` (or `crowdloop round --simulate`)")
        return "\n".join(lines)
    lines.append("")
    lines.append("  " + " ".join(_header(fmt, title) for _, title, fmt in COLUMNS))
    for row in status.rounds:
        lines.append("  " + " ".join(_cell(fmt, row.get(key)) for key, _, fmt in COLUMNS))
    last, progress = status.rounds[-1], status.progress
    folder = campaign.round_dir(progress.round).relative_to(campaign.root)
    lines.append(f"\n  {signal.describe(last)}")
    if "signal" in last and not last["signal"]:
        lines.append("  the classifier tells the classes apart no better than chance, so strategies that trust it "
                     "cannot help: `score.strategy: auto` asks without it (score.no_signal_strategy); label more, "
                     "or try another model.name or model.backend (README: \"Will it save annotations on my data?\")")
    if "stop" in last:
        verdict = "STOP" if last["stop"] else "continue"
        lines.append(f"  stopping rule ({cfg.stopping.metric}, {cfg.stopping.rounds} rounds within "
                     f"{cfg.stopping.epsilon:g}): "
                     f"{verdict}: {last.get('stop_reason', '')}")
    if last.get("unroutable"):
        lines.append(f"  round {progress.round}: {last['unroutable']} picks had no eligible annotator "
                     f"({folder}/unroutable.csv)")
    if progress.waiting > 0:
        lines.append(f"\n  waiting: {progress.waiting} of {progress.asked} annotations asked in round "
                     f"{progress.round} ({folder / 'batch.csv'}); `crowdloop ingest FILE` when they come back "
                     f"(or drop the file into {cfg.schedule.inbox}/ for the next scheduled round)")
    else:
        lines.append(f"\n  round {progress.round}'s batch is answered: `crowdloop round` runs the next one")
    return "\n".join(lines)


def _header(fmt: str, title: str) -> str:
    width = int("".join(ch for ch in fmt.split(":")[1] if ch.isdigit() or ch == ".").split(".")[0])
    return title.rjust(width)


def _cell(fmt: str, value) -> str:
    if value is None:
        return _header(fmt, "-")
    return fmt.format(value)
