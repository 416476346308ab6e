"""`crowdloop status`: the campaign at a glance, read from data/ alone (no servers, no models)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import (agreement, annotator_watch, cache_usage, gate, journal, lineage, lock, signal, stopping,
                             store)
from crowdloop.tasks.errors import CampaignError
from crowdloop.tasks.wording import count, word

COLUMNS = [("round", "round", "{:>5}"), ("annotations", "annotations", "{:>11}"),
           ("labeled_examples", "labeled", "{:>7}"), ("test_accuracy", "test acc", "{:>8.3f}"),
           ("test_macro_f1", "macro-F1", "{:>8.3f}"), ("test_balanced_accuracy", "bal acc", "{:>7.3f}"),
           ("oos_balanced_accuracy", "oos bal", "{:>7.3f}"), ("mean_consensus_quality", "consensus q", "{:>11.3f}"),
           ("krippendorff_alpha", "alpha", "{:>6.3f}"), ("unanimous_share", "unanimous", "{:>9.3f}"),
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
    annotator_table: pd.DataFrame | None = None  # the last round's annotators.csv (quality, change, flags)
    spend: stopping.Spend | None = None  # the stored answers' annotations and money, against the budget
    annotator_ids: frozenset[str] = frozenset()  # who has answered
    cache: cache_usage.CacheUsage | None = None  # what .cache/ holds

    def __str__(self) -> str:
        return render(self)


def collect(root: Path | store.Campaign) -> Status:
    """The :class:`Status` of the campaign at ``root``."""
    campaign = root if isinstance(root, store.Campaign) else store.open_campaign(root)
    cfg = config_mod.load(campaign.params_file)
    with _readable(campaign, campaign.annotations_dir):
        annotations = store.read_annotations(campaign)
    examples = store.read_examples(campaign)
    pool = int((examples["split"] == "pool").sum())
    rows, rounds = [], store.completed_rounds(campaign)
    for number in rounds:
        with _readable(campaign, campaign.round_dir(number)):
            batch_ids = store.read_batch(campaign, number)["example_id"]
            metrics = store.read_round_metrics(campaign, number)
        rows.append(metrics | {"round": number, "answered": gate.answered(batch_ids, annotations, number)})
    return Status(campaign, cfg, len(annotations), int(annotations["annotator_id"].nunique()),
                  int(annotations["example_id"].nunique()), pool, len(examples) - pool, rows,
                  gate.progress(campaign, cfg, annotations, rows), writer := lock.busy(campaign),
                  None if writer is not None else journal.read(campaign),
                  store.read_annotators(campaign, rounds[-1]) if rounds else None,
                  stopping.spend_so_far(annotations, cfg.budget), frozenset(annotations["annotator_id"].astype(str)),
                  cache_usage.usage(campaign.cache))


@contextmanager
def _readable(campaign: store.Campaign, folder: Path):
    """A file of data/ that cannot be read (a batch a spreadsheet saved over, say): one line naming its
    folder and what to do, not a traceback."""
    try:
        yield
    except (OSError, ValueError, KeyError) as err:
        writer = lock.busy(campaign)  # it may have changed the file as this read it
        then = (f"being written now by {lock.describe(writer)}: run `crowdloop status` again once it has finished"
                if writer is not None else "if it was changed by hand, `crowdloop verify` names it, and the next "
                "writing command keeps your version under edited/ and puts back what the last commit recorded")
        raise CampaignError(f"{folder}: a file cannot be read ({type(err).__name__}: {err}); {then}.") from None


def render(status: Status) -> str:
    campaign, cfg = status.campaign, status.cfg
    lines = [
        f"campaign {lineage.campaign_name(campaign, cfg.name)} ({campaign.root.resolve()})",
        f"  {len(cfg.classes)} classes: {', '.join(cfg.classes)}; strategy {cfg.score.strategy}; "
        f"backend {cfg.model.backend}",
        f"  {count(status.annotations, 'annotation')} by {count(status.annotators, 'annotator')} on "
        f"{status.labeled_examples} of {count(status.pool_examples, 'pool example')}; "
        f"{count(status.test_examples, 'gold test example')}",
    ]
    if status.writer is not None:
        lines.append(f"  being written now by {lock.describe(status.writer)}")
    if status.interrupted:
        number = status.interrupted.get("round")  # a round's: its folder may be removed, its batch with it
        lines.append(f"  an interrupted `{status.interrupted['command']}` (since {status.interrupted['since']}) is "
                     "pending: the next writing command, or `crowdloop verify`, finishes or undoes it" +
                     (f" (run `crowdloop verify` before sending round {number}'s batch out: a round the interruption "
                      "caught before its commit is removed)" if number is not None else ""))
    lines.extend(_budget_lines(status))
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
    lines.extend(_agreement_lines(last, cfg.classes))
    lines.extend(_flagged_lines(status.annotator_table, cfg, progress.round))
    if "stop" in last:
        lines.append(_stopping_line(status.rounds, cfg))
    if last.get("unroutable"):
        lines.append(f"  round {progress.round}: {count(last['unroutable'], 'pick')} had no eligible annotator "
                     f"({folder}/unroutable.csv)")
    lines.extend(cache_usage.describe(status.cache) if status.cache else [])
    if progress.waiting > 0:
        lines.append(f"\n  waiting: {progress.waiting} of {progress.asked} annotations asked in round "
                     f"{progress.round} ({folder / 'batch.csv'}); `crowdloop ingest FILE` when they come back "
                     f"(or drop the file into {cfg.schedule.inbox}/ for the next scheduled round)")
    elif progress.stop_reason:
        lines.append(f"\n  round {progress.round}'s batch is answered and the stopping rule fired: `crowdloop round "
                     "--force` runs another round anyway")
    else:
        lines.append(f"\n  round {progress.round}'s batch is answered: `crowdloop round` runs the next one")
    return "\n".join(lines)


def _stopping_line(rounds: list[dict], cfg) -> str:
    """The stopping rule on the last round under params.yaml as it is now (gate.verdict), and what that round
    recorded when a budget or stopping section changed since then gives another verdict."""
    now, then = gate.verdict(rounds, cfg), rounds[-1]
    line = (f"  stopping rule ({cfg.stopping.metric}, {count(cfg.stopping.rounds, 'round')} within "
            f"{cfg.stopping.epsilon:g}): {_verdict(now)}")
    if (bool(now["stop"]), now.get("stop_reason")) != (bool(then["stop"]), then.get("stop_reason")):
        line += (f" (under params.yaml now; round {then['round']} recorded {_verdict(then)}, under the budget and "
                 "stopping sections it had then)")
    return line


def _verdict(metrics: dict) -> str:
    return f"{'STOP' if metrics['stop'] else 'continue'}: {metrics.get('stop_reason', '')}"


def _budget_lines(status: Status) -> list[str]:
    """What the stored answers spent of the budget (params.yaml ``budget``), and cost keys that name nobody."""
    budget, spend, lines = status.cfg.budget, status.spend, []
    if spend is not None and (spend.annotation_budget is not None or spend.money_budget is not None):
        parts = ([f"{spend.annotations} of {spend.annotation_budget} annotations"]
                 if spend.annotation_budget is not None else [])
        parts += [f"{spend.money:g} of {spend.money_budget:g} money"] if spend.money_budget is not None else []
        left = ([f"{spend.annotations_left} annotations"] if spend.annotation_budget is not None else []) + \
            ([f"{spend.money_left:g} money"] if spend.money_budget is not None else [])
        state = "spent: a round asks nothing more" if spend.spent else f"{' and '.join(left)} left"
        lines.append(f"  budget: {' and '.join(parts)} spent by the stored answers; {state}")
    unknown = sorted(set(budget.annotator_costs) - status.annotator_ids)
    if unknown:
        lines.append(f"  budget.annotator_costs names {', '.join(map(repr, unknown))}, who "
                     f"{word(len(unknown), 'has', 'have')} given no annotation yet: a typo? (a cost there counts "
                     "once its annotator answers)")
    return lines


def _agreement_lines(last: dict, classes) -> list[str]:
    """The last round's inter-annotator agreement, overall and per class (tasks/agreement.py)."""
    if "unanimous_share" not in last:
        return ["  agreement: no example has two labels yet"]
    alpha = last.get("krippendorff_alpha")
    per_class = [f"{name} {_number(last.get(agreement.metric_name('krippendorff_alpha', name)))}"
                 f" ({_share(last.get(agreement.metric_name('unanimous_share', name)))})" for name in classes]
    return [f"  agreement: Krippendorff's alpha {_number(alpha)}, unanimous {_share(last['unanimous_share'])} of "
            f"{last.get('multiply_labeled', '?')} examples with two labels or more; per class alpha "
            f"(unanimous): {', '.join(per_class)}"]


def _flagged_lines(annotators: pd.DataFrame | None, cfg: config_mod.Config, number: int) -> list[str]:
    """The annotators routing skips, each with why (tasks/annotator_watch.py)."""
    flagged = annotator_watch.flagged_ids(annotators) if annotators is not None else frozenset()
    if not flagged:
        rule = "off" if cfg.routing.min_quality is None else f"{cfg.routing.min_quality:g}"
        return [f"  flagged annotators: none (routing.min_quality: {rule})"]
    # the round that flags someone routes its own batch without them; the next round works the flags out again
    lines = [f"  flagged annotators (round {number}'s batch asks them nothing; annotators.csv of round {number}):"]
    for row in annotators[annotators["annotator_id"].astype(str).isin(flagged)].itertuples():
        change = "" if row.quality_change != row.quality_change else f", {row.quality_change:+.3f} since the round before"
        lines.append(f"    {row.annotator_id}: {row.flag_reason} (annotator quality {row.annotator_quality:.3f}{change})")
    return lines


def _number(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _share(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _header(fmt: str, title: str) -> str:
    width = int("".join(ch for ch in fmt.split(":")[1] if ch.isdigit() or ch == ".").split(".")[0])
    return title.rjust(width)


def _cell(fmt: str, value) -> str:
    if value is None or value != value:  # None or NaN (a round whose consensus had no labeled example)
        return _header(fmt, "-")
    return fmt.format(value)
