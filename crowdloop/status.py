"""`crowdloop status`: the campaign at a glance, read from data/ alone (no servers, no models)."""

from __future__ import annotations

from pathlib import Path

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import store

COLUMNS = [("round", "round", "{:>5}"), ("annotations", "annotations", "{:>11}"),
           ("labelled_examples", "labelled", "{:>8}"), ("test_accuracy", "test acc", "{:>8.3f}"),
           ("test_macro_f1", "macro-F1", "{:>8.3f}"), ("mean_consensus_quality", "consensus q", "{:>11.3f}"),
           ("batch_size", "asked", "{:>5}"), ("answered", "answered", "{:>8}"),
           ("unroutable", "unroutable", "{:>10}"), ("stable_rounds", "stable", "{:>6}")]


def rows(campaign: store.Campaign) -> list[dict]:
    """One dict per completed round: its metrics plus how many answers came back."""
    annotations = store.read_annotations(campaign)
    answered = annotations["round"].value_counts()
    table = []
    for number in store.completed_rounds(campaign):
        metrics = store.read_round_metrics(campaign, number)
        table.append(metrics | {"round": number, "answered": int(answered.get(number, 0))})
    return table


def render(root: Path) -> str:
    campaign = store.open_campaign(root)
    cfg = config_mod.load(campaign.params_file)
    annotations = store.read_annotations(campaign)
    examples = store.read_examples(campaign)
    pool = int((examples["split"] == "pool").sum())
    lines = [
        f"campaign {campaign.name} ({campaign.root.resolve()})",
        f"  {len(cfg.classes)} classes: {', '.join(cfg.classes)}; strategy {cfg.score.strategy}; "
        f"backend {cfg.model.backend}",
        f"  {len(annotations)} annotations by {annotations['annotator_id'].nunique()} annotators on "
        f"{annotations['example_id'].nunique()} of {pool} pool examples; "
        f"{len(examples) - pool} gold test examples",
    ]
    table = rows(campaign)
    if not table:
        lines.append("  no round has run yet: `crowdloop round` (or `crowdloop round --simulate`)")
        return "\n".join(lines)
    lines.append("")
    lines.append("  " + " ".join(_header(fmt, title) for _, title, fmt in COLUMNS))
    for row in table:
        cells = [_cell(fmt, row.get(key)) for key, _, fmt in COLUMNS]
        lines.append("  " + " ".join(cells))
    last = table[-1]
    waiting = last["batch_size"] - last["answered"]
    where = campaign.round_dir(last["round"]).relative_to(campaign.root) / "batch.csv"
    if "stop" in last:
        verdict = "STOP" if last["stop"] else "continue"
        lines.append(f"\n  stopping rule ({cfg.stopping.rounds} rounds within {cfg.stopping.epsilon:g}): "
                     f"{verdict}: {last.get('stop_reason', '')}")
    if last.get("unroutable"):
        lines.append(f"  round {last['round']}: {last['unroutable']} picks had no eligible annotator "
                     f"({campaign.round_dir(last['round']).relative_to(campaign.root)}/unroutable.csv)")
    if waiting > 0:
        lines.append(f"\n  waiting: {waiting} of {last['batch_size']} annotations asked in round "
                     f"{last['round']} ({where}); `crowdloop ingest FILE` when they come back "
                     f"(or drop the file into {cfg.schedule.inbox}/ for the next scheduled round)")
    else:
        lines.append(f"\n  round {last['round']}'s batch is answered: `crowdloop round` runs the next one")
    return "\n".join(lines)


def _header(fmt: str, title: str) -> str:
    width = int("".join(ch for ch in fmt.split(":")[1] if ch.isdigit() or ch == ".").split(".")[0])
    return title.rjust(width)


def _cell(fmt: str, value) -> str:
    if value is None:
        return _header(fmt, "-")
    return fmt.format(value)
