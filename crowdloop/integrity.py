"""`crowdloop verify`: is the campaign sound? One line per thing that is not.

It holds the campaign's lock while it looks (it never waits: a campaign being written
is reported as busy), first finishes or undoes what an interrupted command left (as
every writer does, :mod:`crowdloop.tasks.recovery`), then checks:

* the store is readable: params.yaml, examples, every annotation part file, every round's files;
* every annotation names a pool example, an annotator and a class of params.yaml;
* no answer is stored twice (an annotator's answer repeated for the same example);
* data/ is exactly what the last commit recorded, with no half-written file in it;
* git holds no change to the files crowdloop writes (data.dvc, dvc.lock, metrics.json);
* every round is tagged, and every round tag's data.dvc, listing and files are in the DVC
  cache, its round folder byte-identical to what is in data/;
* every round's MLflow run (lineage.json) is in the tracking store and FINISHED.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import files, lock, recovery, store, version
from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.wording import count, word


@dataclass(frozen=True)
class Verified:
    """``findings``: one line per problem ([] when the campaign is sound); ``recovered``: what an
    interrupted command had left and was finished or undone first (None: nothing)."""

    campaign: store.Campaign
    findings: list[str] = field(default_factory=list)
    recovered: str | None = None
    annotations: int = 0
    rounds: int = 0

    def __str__(self) -> str:
        lines = [f"verify: {self.recovered}"] if self.recovered else []
        if not self.findings:
            lines.append(f"{self.campaign.root.resolve()}: sound ({count(self.annotations, 'annotation')}, "
                         f"{count(self.rounds, 'round')}; store, git, DVC and MLflow agree)")
        return "\n".join(lines + self.findings)


def verify(campaign: store.Campaign) -> Verified:
    """Recover (when no writer runs), then check the campaign; see the module's docstring."""
    try:
        with lock.hold(campaign, "verify", timeout=0):
            recovered = recovery.recover(campaign)
            return _check(campaign, recovered)
    except lock.LockedError:
        return Verified(campaign, [f"{campaign.root.resolve()}: busy: {lock.describe(lock.holder(campaign))} is "
                                   "writing it; run `crowdloop verify` again once it has finished."])


def _check(campaign: store.Campaign, recovered: str | None) -> Verified:
    findings: list[str] = []
    try:
        cfg = config_mod.load(campaign.params_file)
        examples = store.read_examples(campaign)
    except (CrowdloopError, OSError, ValueError) as err:
        return Verified(campaign, [f"{campaign.examples_file}: cannot read the campaign ({err})."], recovered)
    parts = []
    for path in sorted(campaign.annotations_dir.glob("*.parquet")):
        try:
            parts.append(pd.read_parquet(path).assign(part=path.name))
        except (OSError, ValueError) as err:
            findings.append(f"{path}: unreadable annotation part file ({err}).")
    annotations = pd.concat(parts, ignore_index=True) if parts else store.empty_annotations().assign(part="")
    findings += _annotation_findings(annotations, examples, cfg.classes)
    rounds = store.completed_rounds(campaign)
    for number in rounds:
        try:
            store.read_round_metrics(campaign, number), store.read_batch(campaign, number)
        except (OSError, ValueError) as err:
            findings.append(f"{campaign.round_dir(number)}: unreadable round files ({err}).")
    findings += [f"{path}: a half-written file (an interrupted write); remove it." for path in
                 files.leftovers(campaign.data)]
    findings += [f"data/{name}: differs from what the last commit recorded (the next command keeps it under "
                 f"{version.EDITED}/ and puts the recorded version back)." for name in version.changed_data(campaign)]
    findings += [f"{name}: changed since the last commit; crowdloop commits it with data/." for name in
                 version.dirty(campaign) if name in version.WRITTEN]
    findings += _tag_findings(campaign, rounds)
    findings += _mlflow_findings(campaign, rounds, cfg.tracking.uri)
    return Verified(campaign, findings, recovered, len(annotations), len(rounds))


def _annotation_findings(annotations: pd.DataFrame, examples: pd.DataFrame, classes) -> list[str]:
    pool = set(examples.loc[examples["split"] == "pool", "example_id"].astype(str))
    checks = [
        (~annotations["example_id"].astype(str).isin(pool), "name no pool example", "example_id"),
        (annotations["annotator_id"].fillna("").astype(str).str.strip() == "", "have no annotator", "example_id"),
        (~annotations["label"].isin(list(classes)), "have a label outside params.yaml's classes", "label"),
    ]
    # the same answer as the pair's previous one: stored twice (a changed answer is not a repeat)
    previous = annotations.groupby(["example_id", "annotator_id"], sort=False)["label"].shift()
    checks.append((previous.eq(annotations["label"]), "repeat an answer already stored", "example_id"))
    findings = []
    for bad, what, column in checks:
        if bad.any():
            first = annotations[bad].iloc[0]
            findings.append(f"data/annotations: {count(int(bad.sum()), 'annotation')} {what}, e.g. {column} "
                            f"'{first[column]}' of annotator '{first['annotator_id']}' in {first['part']}.")
    return findings


def _tag_findings(campaign: store.Campaign, rounds: list[int]) -> list[str]:
    findings, tags, checked = [], version.round_tags(campaign), set()
    findings += [f"round {n}: no git tag {version.round_tag(n)}; the round was never committed." for n in rounds
                 if version.round_tag(n) not in tags]
    current = store.data_md5s(campaign)
    for tag in tags:
        listing = version.data_listing(campaign, tag)
        if listing is None:
            findings.append(f"{tag}: its data.dvc or its listing is not in the DVC cache; `crowdloop pull` it.")
            continue
        missing = [name for name, md5 in listing.items() if md5 not in checked and not version.cache_object(campaign, md5).is_file()]
        checked |= set(listing.values())
        if missing:
            findings.append(f"{tag}: {count(len(missing), 'file')} of its data {word(len(missing), 'is', 'are')} "
                            f"not in the DVC cache, e.g. {missing[0]}.")
        prefix = f"rounds/{tag.split('-')[1]}/"
        if int(tag.split("-")[1]) in rounds:
            differ = [n for n in {**listing, **current} if n.startswith(prefix) and listing.get(n) != current.get(n)]
            if differ:
                findings.append(f"{tag}: data/{sorted(differ)[0]} is not what the tag recorded.")
    return findings


def _mlflow_findings(campaign: store.Campaign, rounds: list[int], uri: str | None) -> list[str]:
    from crowdloop.tasks import track

    ids = {n: store.read_lineage(campaign, n).get("mlflow_run_id") for n in rounds}
    try:
        runs = track.round_runs(campaign, uri=uri) if rounds else {}
    except Exception as err:  # a tracking server that does not answer
        return [f"MLflow ({track.tracking_uri(campaign.mlruns, uri)}): cannot read the round runs ({err})."]
    findings = []
    for number, run_id in ids.items():
        if not run_id:
            findings.append(f"round {number}: no MLflow run in {campaign.round_dir(number)}/lineage.json.")
        elif runs.get(run_id) != "FINISHED":
            findings.append(f"round {number}: MLflow run {run_id} is {runs.get(run_id, 'missing')}, not FINISHED.")
    return findings
