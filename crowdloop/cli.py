"""The `crowdloop` command.

    crowdloop demo campaigns/demo          init --demo, then simulated rounds, then a summary
    crowdloop init --demo DIR              a ready demo campaign (data, params.yaml, git + DVC)
    crowdloop init DIR --examples F --classes a,b,c
    crowdloop round [--simulate] [--force] one round; writes the batch to label
    crowdloop ingest FILE... [--skip-invalid] answers come back (CSV, TSV, JSONL or a Label Studio export)
    crowdloop export --format label-studio the last batch as Label Studio tasks + labeling config
    crowdloop labelstudio push | pull      the batch to a Label Studio project; its annotations back
    crowdloop labels [--out F]             the labeled dataset so far (consensus of every answer)
    crowdloop labels --predicted           ... and the pool nobody annotated, labeled by the last round's model
    crowdloop status                       rounds, annotations, accuracy, what is waiting
    crowdloop verify                       store, git, DVC and MLflow agree? one line per finding
    crowdloop rollback N                   data/ back to round N (pulls from the DVC remote if needed)
    crowdloop deploy [--work-pool P]       rounds on the schedule of params.yaml, on a Prefect server
    crowdloop deploy --pause | --resume    that schedule paused, or going again
    crowdloop history                      one line a round: git, DVC, MLflow and Prefect ids
    crowdloop push | pull                  data/ to or from the DVC remote of params.yaml
    crowdloop simulate DATA                replay a labeled dataset: strategies x seeds (crowdloop/simulate_cmd.py)

Each command calls crowdloop's Python API (crowdloop/api.py), imported by the command that runs:
importing this module loads nothing heavy (not even pandas), so `crowdloop round` starts its MLflow
helper process at once, and heavy libraries (Prefect, MLflow, torch) load only where needed.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

from crowdloop import answers_cmd, console, rounds_cmd, signals, simulate_cmd, versions_cmd
from crowdloop.tasks.errors import ConfigError, CrowdloopError

log = logging.getLogger("crowdloop")
# What a stopped command says of the work it left (README "One writer at a time; any crash survivable")
LEFT_WORK = ("the next command in the campaign, or `crowdloop verify`, finishes or undoes what it left: answers an "
             "ingest stored are committed, a round not yet committed is removed.")

# Offline, private defaults; a user can override any of them in the environment.
ENV_DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "GIT_PYTHON_REFRESH": "quiet",
}


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command in ``argv``; returns its exit code. ``own_process``: this is the
    ``crowdloop`` process itself (:func:`entry`), so rounds may log to MLflow from a helper
    process (:mod:`crowdloop.tasks.track_process`); an in-process caller keeps everything here."""
    args = _parser().parse_args(argv)
    args.campaign = args.campaign or enclosing_campaign(Path.cwd())
    args.own_process = own_process
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    for library in ("PREFECT", "MLFLOW"):  # their INFO lines (MLflow making its tables...) only with --verbose
        os.environ.setdefault(f"{library}_LOGGING_LEVEL", "INFO" if args.verbose else "WARNING")
    console.log_to_stderr(logging.INFO)
    try:
        return args.func(args) or 0
    except CrowdloopError as err:  # the user can fix it: one line, no traceback
        print(f"crowdloop: error: {err}", file=sys.stderr)
        return 2
    except signals.Terminated:
        print(f"crowdloop: stopped by SIGTERM; {LEFT_WORK}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:  # a traceback of wherever it landed (Dask pickling a job, pandas) says nothing
        print(f"crowdloop: stopped by Ctrl-C; {LEFT_WORK}", file=sys.stderr)
        return 128 + signal.SIGINT


def entry() -> None:
    """The ``crowdloop`` command: :func:`main` as a process of its own, which SIGTERM stops. Output
    piped into a reader that stops early (``crowdloop status | head -1``) ends it quietly, with the
    status of a process that SIGPIPE ended (141), as for any other command in a pipeline."""
    signals.stop_on_sigterm()
    without_cleanlab_datalab()
    try:
        code = main(own_process=True)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush would fail again
        code = 128 + signal.SIGPIPE
    exit_frozen(code)


def enclosing_campaign(folder: Path) -> Path:
    """The campaign ``folder`` is in, found as git finds its repository: ``folder`` or the nearest folder
    above it with params.yaml and data/examples.parquet (or data.dvc: a clone before its pull); else ``folder``."""
    for root in (folder, *folder.parents):
        if (root / "params.yaml").is_file() and ((root / "data" / "examples.parquet").is_file()
                                                  or (root / "data.dvc").is_file()):
            return root
    return folder


def without_cleanlab_datalab() -> None:
    """Keep cleanlab from importing its Datalab in this process. cleanlab 2.9.0 imports Datalab,
    and with it Hugging Face ``datasets`` (0.7 s on a slow machine), on any ``import cleanlab``
    once ``datasets`` is installed; crowdloop never uses Datalab. A module marked missing makes
    cleanlab put a stub in its place that says Datalab is unavailable. For the command's own
    process only: the Python API leaves a user's cleanlab whole."""
    sys.modules.setdefault("cleanlab.datalab.datalab", None)


def exit_frozen(code: int) -> NoReturn:
    """End the process with ``code`` once its work is done, without the interpreter's last garbage
    collections: on its way out Python collects several times over every object torch,
    transformers, MLflow and Prefect made (3 s after a simulation here) only to hand the memory
    back to the system, which the exit does anyway. :func:`gc.freeze` takes them out of those
    collections; atexit handlers (log flushing, Prefect's server stop) still run, and a SIGTERM
    during them ends the process without a traceback (:func:`crowdloop.signals.exiting`)."""
    signals.exiting()
    gc.freeze()
    sys.exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crowdloop", description=__doc__.split("\n\n")[0])
    parser.add_argument("-C", "--campaign", type=Path, default=None,
                        help="campaign directory (default: the one the current directory is in)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's and MLflow's own logs")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="make a new campaign directory")
    p.add_argument("directory", type=Path)
    p.add_argument("--demo", action="store_true", help="generate the demo support-ticket campaign")
    p.add_argument("--examples", type=Path, help="CSV/TSV/JSONL/parquet with id, text[, split, gold]")
    p.add_argument("--classes", help="comma-separated class names, in order")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="init --demo, run simulated rounds, print where to look")
    p.add_argument("directory", type=Path)
    p.add_argument("--rounds", type=int, default=None, help="default: simulate.rounds in params.yaml")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("round", help="run the next round and write its batch")
    p.add_argument("--simulate", action="store_true", help="simulated annotators answer the batch")
    p.add_argument("--force", action="store_true",
                   help="run even if the last batch has no answers or the stopping rule fired (with --rounds N: all N)")
    p.add_argument("--rounds", type=int, default=1, help="how many rounds in a row (default 1)")
    p.set_defaults(func=cmd_round)

    answers_cmd.add_parsers(sub)
    simulate_cmd.add_parser(sub)

    p = sub.add_parser("labels", help="the labeled dataset so far: each annotated example's consensus label, "
                                      "from every stored answer")
    p.add_argument("--out", type=Path, default=None, help="a .csv, .parquet or .jsonl file (default: "
                                                          "exports/labels.csv in the campaign)")
    p.add_argument("--predicted", action="store_true",
                   help="also label the pool examples nobody annotated, by the last round's model; adds the "
                        "columns source (annotators | model) and predicted_probability")
    p.set_defaults(func=cmd_labels)

    p = sub.add_parser("status", help="rounds, annotations, accuracy, what is waiting")
    p.set_defaults(func=cmd_status)
    versions_cmd.add_parsers(sub)

    p = sub.add_parser("deploy", help="serve scheduled rounds on the Prefect server of PREFECT_API_URL")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--work-pool", help="register the deployment on this Prefect work pool and return: the "
                                         "pool's workers (`prefect worker start --pool NAME`) run the rounds")
    how.add_argument("--pause", action="store_true", help="pause the campaign's schedule on the server (its runs "
                                                          "already scheduled are dropped) and return")
    how.add_argument("--resume", action="store_true", help="start the paused schedule again and return")
    p.set_defaults(func=cmd_deploy)

    return parser


def cmd_init(args) -> None:
    from crowdloop import api, campaign

    if args.demo and (args.examples or args.classes):
        raise ConfigError("init --demo makes its own examples and classes; give --demo alone, or --examples "
                          "FILE and --classes a,b,c.")
    if args.demo:
        made = api.init_demo(args.directory, seed=args.seed)
    else:
        missing = [flag for flag, given in (("--examples FILE", args.examples), ("--classes a,b,c", args.classes))
                   if not given]
        if missing:
            raise ConfigError(f"init needs {' and '.join(missing)} (or --demo for the demo campaign).")
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
        campaign.check_classes(classes, given_as="--classes")
        made = api.init_campaign(args.directory, args.examples, classes=classes, seed=args.seed)
    print(f"campaign ready: {made.root}  (next: cd {made.root} && crowdloop round)")


def cmd_demo(args) -> None:
    from crowdloop import api
    from crowdloop.tasks import config as config_mod

    if args.rounds is not None and args.rounds < 1:  # before the campaign is made, so nothing is left behind
        raise ConfigError(f"--rounds is {args.rounds}; run at least 1 round.")
    log.info("building the demo campaign in %s", args.directory)
    made = api.init_demo(args.directory, seed=args.seed)
    rounds = args.rounds if args.rounds is not None else config_mod.load(made.params_file).simulate.rounds
    last = rounds_cmd.run(made.root, rounds, simulate=True, force=False, helper=args.own_process)
    print()
    print(api.status(made))
    compare = f"; dvc metrics diff round-001 round-{last:03d}" if last else ""  # none: no round ran
    print(f"\nLook around:\n  cd {made.root}\n  crowdloop status\n  crowdloop labels   # the labeled dataset so far"
          "\n  mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db   # every round is a run"
          f"\n  git log --oneline --decorate{compare}")


def cmd_round(args) -> None:
    rounds_cmd.run(args.campaign, args.rounds, simulate=args.simulate, force=args.force, helper=args.own_process)


def cmd_labels(args) -> None:
    from crowdloop import api, labels_api

    print(labels_api.describe(api.export_labels(args.campaign, args.out, predicted=args.predicted)))


def cmd_status(args) -> None:
    from crowdloop import api

    print(api.status(args.campaign))


def cmd_deploy(args) -> None:
    from crowdloop import api, deploy
    from crowdloop.tasks import config as config_mod
    from crowdloop.tasks import lineage

    campaign = api.open_campaign(args.campaign)
    cfg = config_mod.load(campaign.params_file)
    name = lineage.campaign_name(campaign, cfg.name)
    if args.pause or args.resume:
        url = deploy.api_url()
        deployment_id = deploy.set_paused(name, url, paused=args.pause)
        print(f"scheduled rounds of {name} {'paused' if args.pause else 'resumed'} on {url} (deployment "
              f"{deployment_id}){'; resume with: crowdloop deploy --resume' if args.pause else ''}")
        return
    schedule = deploy.schedule_options(cfg.schedule, str(campaign.params_file))
    url = deploy.api_url()
    inbox = (campaign.root / cfg.schedule.inbox).resolve()
    inbox.mkdir(parents=True, exist_ok=True)
    if args.work_pool:
        deployment_id = deploy.register(campaign, name, schedule, args.work_pool)
        print(f"scheduled rounds of {name} registered on work pool {args.work_pool} at {url} "
              f"(deployment {deployment_id}, {deploy.describe(schedule)}); answer files go in {inbox}/. "
              f"Start a worker: prefect worker start --pool {args.work_pool}")
        return
    print(f"serving scheduled rounds of {name} on {url} ({deploy.describe(schedule)}); answer files go in "
          f"{inbox}/. Stop with Ctrl-C.", flush=True)
    deploy.serve(campaign, name, schedule)


if __name__ == "__main__":
    entry()
