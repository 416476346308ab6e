"""The commands that send a batch out and take answers back: `crowdloop ingest`, `crowdloop export`
and `crowdloop labelstudio push | pull`. Each calls crowdloop's Python API (crowdloop/api.py)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from crowdloop.tasks.errors import CrowdloopError
from crowdloop.tasks.schema import EXPORT_FORMATS
from crowdloop.tasks.wording import count


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="store annotators' answers (CSV, TSV, JSONL, or a Label Studio JSON, CSV or TSV export)")
    p.add_argument("file", type=Path, nargs="+", help="one or more answer files, each stored (and committed) in turn")
    p.add_argument("--skip-invalid", action="store_true",
                   help="store the valid rows; write the others with their reasons to <file>.refused.csv")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export", help="write a round's batch as Label Studio tasks and labeling config")
    p.add_argument("--format", choices=list(EXPORT_FORMATS), default="label-studio",
                   help="label-studio: tasks.json to import; -csv: tasks.csv (safe in spreadsheets); "
                        "-jsonl: tasks.jsonl for a cloud storage folder (default: label-studio)")
    p.add_argument("--round", type=int, default=None, help="whose batch (default: the last round's)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("labelstudio", help="send the batch to Label Studio, or take its annotations back "
                                           "($LABEL_STUDIO_URL, $LABEL_STUDIO_API_KEY)")
    verbs = p.add_subparsers(dest="verb", required=True)
    push = verbs.add_parser("push", help="create/update the project of params.yaml and import the batch")
    push.add_argument("--round", type=int, default=None, help="whose batch (default: the last round's)")
    push.set_defaults(func=cmd_labelstudio_push)
    verbs.add_parser("pull", help="fetch the project's annotations and ingest them").set_defaults(
        func=cmd_labelstudio_pull)


def cmd_ingest(args) -> None:
    from crowdloop import api

    for i, path in enumerate(args.file):
        try:
            result = api.ingest(args.campaign, path, skip_invalid=args.skip_invalid)
        except CrowdloopError as err:
            if i == 0:
                raise
            rest = shlex.join(str(p) for p in args.file[i:])
            raise CrowdloopError(f"{err} Ingested before it: {', '.join(str(p) for p in args.file[:i])}; fix it, "
                                 f"then run `crowdloop ingest {rest}`.") from err
        print(summary(path, result))
        if result.refused_file:
            print(f"  {count(len(result.refused), 'row')} refused, each with its reason, in {result.refused_file}")


def cmd_export(args) -> None:
    from crowdloop import api

    done = api.export(args.campaign, format=args.format, round=args.round)
    print(f"round {done.round}'s batch: {count(done.tasks, 'task')} in {', '.join(str(f) for f in done.files)}")


def cmd_labelstudio_push(args) -> None:
    from crowdloop import api

    done = api.labelstudio_push(args.campaign, round=args.round)
    how = "created" if done.created else ("classes updated" if done.config_updated else "existing")
    print(f"round {done.round}'s batch -> Label Studio project {done.project} '{done.title}' ({how}): "
          f"{count(done.imported, 'task')} imported, {done.already} already there.")


def cmd_labelstudio_pull(args) -> None:
    from crowdloop import api

    result = api.labelstudio_pull(args.campaign)
    print(summary(Path(result.source), result))


def summary(path: Path, result) -> str:
    """One line: what an ingested file brought (``result``: an ``Ingested``)."""
    line = (f"{path}: {count(len(result.new), 'new annotation')} stored for round {result.round}; "
            f"{result.already_stored} already stored, {count(result.unanswered, 'row')} without a label skipped")
    if result.repeated:
        line += (f"; {count(result.repeated, 'row repeats', 'rows repeat')} an answer given earlier in the file "
                 "(stored once)")
    if result.replaced:  # ingest.on_change latest: a file read again does not undo a later answer
        line += (f"; {count(result.replaced, 'of those is an answer', 'of those are answers')} this file gave "
                 "before that a later answer replaced, which still counts (a change back comes in a file of "
                 "another name)")
    if result.skipped or result.empty:
        line += (f"; Label Studio annotations not stored: {result.skipped} skipped (cancelled), "
                 f"{result.empty} empty")
    return line + "."
