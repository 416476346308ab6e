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
  cache or on the DVC remote (a clone holds only what it pulled: earlier rounds' data is on the
  remote, which is looked into when it is a local folder, and said to be so otherwise), its
  round folder byte-identical to what is in data/;
* every round's MLflow run (lineage.json) is in the tracking store, FINISHED, and in the
  campaign's experiment (params.yaml ``name``, else the directory's name).

``notes`` say what was checked another way or not at all, and is no problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crowdloop.tasks import config as config_mod
from crowdloop.tasks import files, lineage, lock, recovery, store, version
from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.wording import count, word


@dataclass(frozen=True)
class Verified:
    """``findings``: one line per problem ([] when the campaign is sound); ``recovered``: what an
    interrupted command had left and was finished or undone first (None: nothing); ``notes``:
    what is no problem but was checked another way or not at all (a clone's earlier rounds)."""

    campaign: store.Campaign
    findings: list[str] = field(default_factory=list)
    recovered: str | None = None
    annotations: int = 0
    rounds: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"verify: {line}" for line in [self.recovered, *self.notes] if line]
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
            parts.append(files.read_parquet(path).assign(part=path.name))
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
    tag_findings, notes = _tag_findings(campaign, rounds, cfg.remote.url)
    findings += tag_findings
    notes += _unpushed(campaign, version.remote_folder(campaign, cfg.remote.url))
    findings += _mlflow_findings(campaign, rounds, lineage.campaign_name(campaign, cfg.name), cfg.tracking.uri)
    return Verified(campaign, findings, recovered, len(annotations), len(rounds), notes)


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


def _tag_findings(campaign: store.Campaign, rounds: list[int], remote: str | None) -> tuple[list[str], list[str]]:
    """Findings about the round tags, and notes: the tags whose data is on the remote only (a clone's)."""
    findings, tags, where = [], version.round_tags(campaign), {}  # where: md5 -> "cache", "remote" or None
    findings += [f"round {n}: no git tag {version.round_tag(n)}; the round was never committed." for n in rounds
                 if version.round_tag(n) not in tags]
    folder = version.remote_folder(campaign, remote)  # None: no remote, or one reached by a URL (not looked into)
    nowhere = (f"neither in the DVC cache nor on the DVC remote {folder}" if folder else
               "not in the DVC cache, and params.yaml names no DVC remote (remote.url)")
    current, on_remote, unchecked = store.data_md5s(campaign), [], []
    for tag in tags:
        md5 = version.data_md5(campaign, tag)
        here = version.read_listing(campaign, md5) if md5 else None
        listing = here if here is not None or not (md5 and folder) else version.read_listing(campaign, md5, folder)
        if listing is None and md5 and remote and not folder:
            unchecked.append(tag)
            continue
        if listing is None:
            findings.append(f"{tag}: its data is {nowhere}, so a rollback to it would fail; point remote.url "
                            "at the folder the campaign pushes to, or `crowdloop push` from a copy that has it.")
            continue
        # every tag that holds a file is judged by it (rounds share most files), each file looked up once
        not_here = [name for name, file_md5 in listing.items() if _where(campaign, file_md5, folder, where) != "cache"]
        missing = [name for name in not_here if where[listing[name]] is None]
        if missing and (folder or not remote):
            findings.append(f"{tag}: {count(len(missing), 'file')} of its data {word(len(missing), 'is', 'are')} "
                            f"{nowhere}, e.g. {missing[0]}.")
        elif here is None or not_here:
            (unchecked if missing else on_remote).append(tag)
        prefix = f"rounds/{tag.split('-')[1]}/"
        if int(tag.split("-")[1]) in rounds:
            differ = [n for n in {**listing, **current} if n.startswith(prefix) and listing.get(n) != current.get(n)]
            if differ:
                findings.append(f"{tag}: data/{sorted(differ)[0]} is not what the tag recorded.")
    notes = [f"{_listed(on_remote)}: data on the DVC remote {folder} (checked there), not in this copy's DVC cache; "
             "`crowdloop rollback N` fetches round N's."] if on_remote else []
    notes += [f"{_listed(unchecked)}: data not in this copy's DVC cache, and the DVC remote {remote} is not looked "
              f"into from here; `dvc fetch -r {version.REMOTE} --all-tags` fetches every round's for verify to check."
              ] if unchecked else []
    return findings, notes


def _unpushed(campaign: store.Campaign, folder: Path | None) -> list[str]:
    """A note when the data the last commit records (answers ingested since the last round, say) is
    not all on the remote folder ``folder``: a copy of the campaign could not pull it yet."""
    md5 = version.data_md5(campaign)
    listing = version.read_listing(campaign, md5) if md5 and folder is not None else None
    if listing is None:  # no remote folder to look into, or not in the cache: the tag checks speak
        return []
    missing = [f"data/{name}" for name, file_md5 in sorted(listing.items())
               if not version.remote_object(folder, file_md5).is_file()]
    if version.remote_object(folder, md5).is_file() and not missing:
        return []
    return [f"the last commit's data/ is not all on the DVC remote {folder} yet ("
            f"{missing[0] if missing else 'its listing'}{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"
            "): a copy of the campaign cannot pull it until `crowdloop push` (or the next round) sends it."]


def _where(campaign: store.Campaign, md5: str, folder, where: dict) -> str | None:
    """Where the object ``md5`` is: ``"cache"``, ``"remote"`` (the local folder ``folder``) or None;
    remembered in ``where``."""
    if md5 not in where:
        kept = version.stored_object(campaign, md5, folder)
        where[md5] = None if kept is None else "cache" if kept == version.cache_object(campaign, md5) else "remote"
    return where[md5]


def _listed(tags: list[str]) -> str:
    return ", ".join(tags) if len(tags) <= 3 else f"{tags[0]} to {tags[-1]} ({len(tags)} round tags)"


def _mlflow_findings(campaign: store.Campaign, rounds: list[int], name: str, uri: str | None) -> list[str]:
    """Each round's run looked up by the id its lineage.json holds, wherever it is; one finding for
    runs in another experiment than the campaign's ``name`` (new rounds would not join them)."""
    from crowdloop.tasks import track

    ids = {n: store.read_lineage(campaign, n).get("mlflow_run_id") for n in rounds}
    where = track.tracking_uri(campaign.mlruns, uri)
    # the campaign's own store (mlruns/) is git-ignored: a clone has the runs only through a shared one
    database = Path(where.removeprefix("sqlite:///")) if where.startswith("sqlite:///") else None
    own = database is not None and database.parent == campaign.mlruns.resolve()
    try:  # a store that is not there holds no run; opening it would make an empty one
        runs = track.find_runs(campaign, [i for i in ids.values() if i], name=name, uri=uri) \
            if rounds and (database is None or database.is_file()) else {}
    except Exception as err:  # a tracking server that does not answer
        return [f"MLflow ({where}): cannot read the round runs ({err})."]
    findings, elsewhere = [], {}
    local = ("; mlruns/ is not part of a copy of the campaign: set tracking.uri to the store the runs are in"
             if own else "")
    for number, run_id in ids.items():
        status, experiment = runs.get(run_id, ("missing", name))
        if not run_id:
            findings.append(f"round {number}: no MLflow run in {campaign.round_dir(number)}/lineage.json.")
        elif status == "missing":
            findings.append(f"round {number}: MLflow run {run_id} is not in the tracking store {where}{local}.")
        elif status != "FINISHED":
            findings.append(f"round {number}: MLflow run {run_id} is {status}, not FINISHED.")
        if run_id and experiment != name:
            elsewhere.setdefault(experiment, []).append(number)
    for experiment, numbers in elsewhere.items():
        which = f"round {numbers[0]}: its MLflow run is" if len(numbers) == 1 else \
            f"rounds {', '.join(map(str, numbers))}: their MLflow runs are"
        findings.append(f"{which} in the experiment "
                        f"{experiment!r}, not in {name!r} (the campaign's name: params.yaml 'name', else the "
                        f"directory's), where new rounds would go; set `name: {experiment}` in params.yaml.")
    return findings
