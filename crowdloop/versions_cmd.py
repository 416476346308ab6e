"""The commands that move a campaign through its versions: `crowdloop verify`, `rollback`, `history`,
`push` and `pull`. Each calls crowdloop's Python API (crowdloop/api.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from crowdloop.tasks.wording import count, word


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check store, git, DVC and MLflow agree; exit 1 with one line per finding")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("rollback", help="restore data/ to what it was at round N")
    p.add_argument("round", type=int)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("history", help="one line a round: git commit, DVC hash, MLflow run, Prefect flow run")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("push", help="send every round's data to the DVC remote (remote.url)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="fetch the checked-out data/ from the DVC remote (a fresh clone)")
    p.set_defaults(func=cmd_pull)


def cmd_verify(args) -> int:
    from crowdloop import api

    verified = api.verify(args.campaign)
    print(verified)
    return 1 if verified.findings else 0


def cmd_rollback(args) -> None:
    from crowdloop import api

    done = api.rollback(args.campaign, args.round)
    if done.after == done.before:
        print(f"data/ is round {args.round}'s already (commit {done.before[:12]}, DVC hash {_dvc_md5(args.campaign)}) "
              "and no later round has a tag: nothing to roll back, no commit made.")
        return
    n = len(done.archived)
    archived = (f"; {count(n, 'later round tag')} ({', '.join(done.archived)}) {word(n, 'is', 'are')} kept as "
                "archived/round-NNN-<commit>" if n else "")
    print(f"data/ restored to round {args.round} (DVC hash {_dvc_md5(args.campaign)}, its dvc_md5 in `crowdloop "
          f"history`); the state before is commit {done.before[:12]}{archived}.")
    dropped = done.annotations_before - done.annotations_after
    if dropped:
        print(f"no longer in data/: {count(dropped, 'annotation')} stored after round "
              f"{args.round} ({done.annotations_after} remain); ingest their answer files again to keep them "
              "(an answer already stored is not stored twice).")


def cmd_push(args) -> None:
    from crowdloop import api

    pushed = api.push(args.campaign)
    if pushed.not_sent:
        print(f"pushed what this copy has to the DVC remote {pushed.url}; not from here: {', '.join(pushed.not_sent)}, "
              "whose data this copy's DVC cache lacks (the remote has it only if the copy that made it pushed it: "
              "run `crowdloop push` there).")
        return
    print(f"every round's data/ is in the DVC remote {pushed.url}")


def cmd_pull(args) -> None:
    from crowdloop import api

    url = api.pull(args.campaign)
    print(f"data/ checked out from {url} (DVC hash {_dvc_md5(args.campaign)})")


def _dvc_md5(root: Path) -> str:
    """data.dvc's hash of data/, short: what `crowdloop history` (dvc_md5) and MLflow (crowdloop.dvc_data_md5) show."""
    from crowdloop.tasks import store, version

    return (version.data_md5(store.Campaign(Path(root))) or "-")[:12]


def cmd_history(args) -> None:
    from crowdloop import history_table

    print(history_table.render(args.campaign))
