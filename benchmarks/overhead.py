"""What orchestration costs: Prefect's local server start, a cached re-run of a round, `crowdloop status`.

    python benchmarks/overhead.py [--repeats 5] [--out benchmarks/out/overhead.json]

Builds the demo campaign in a temporary folder, runs round 1 once (this trains),
then times, as fresh processes the way a user runs them (medians of --repeats):

- ``prefect ephemeral start``: a process that runs an empty flow, Prefect's local
  server started for it (PREFECT_HOME reused, as on a user's machine; and fresh);
- ``cached re-run``: ``crowdloop rollback 0`` (untimed), then ``crowdloop round
  --simulate``: the training step comes from Prefect's cache. Timed with the local
  server and with a running ``prefect server`` (PREFECT_API_URL, as under
  ``crowdloop deploy``); ``steps`` is the flow's own time (what the command prints); and
  once more with the server as an in-process call of the CLI would run it (MLflow and
  cleanlab's Datalab imported in the command's own process, no helper process);
- ``crowdloop status``.

Goals (issue 5): cached re-run <= 5 s, status <= 1.5 s. Never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
EMPTY_FLOW = "from prefect import flow\nflow(lambda: 1, name='empty')()\n"
IN_PROCESS = "import sys\nfrom crowdloop import cli\ncli.exit_frozen(cli.main(sys.argv[1:]))\n"
ENV = {"DO_NOT_TRACK": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
       "HF_HUB_OFFLINE": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
       # as the crowdloop command sets it: Prefect's 20 s default is too short for a fresh
       # PREFECT_HOME on a slow machine (28 s seen)
       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def timed(args: list[str], env: dict, cwd: Path | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(args, env={**os.environ, **ENV, **env}, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def step_seconds(stdout: str) -> float:
    """The sum of the step times `crowdloop round` prints: ``[load 0.1s, consensus 0.0s, ...]``."""
    steps = re.search(r"\[(.*)\]\s*$", stdout.strip().splitlines()[-1]).group(1)
    return sum(float(v) for v in re.findall(r"([\d.]+)s", steps))


def prefect_server(home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port),
                             "--no-ui"], env={**os.environ, **ENV, "PREFECT_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    import httpx

    for _ in range(180):
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("prefect server did not start in 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/overhead.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crowdloop-overhead-"))
    home = {"PREFECT_HOME": str(work / "prefect-home")}
    crowdloop = [str(BIN / "crowdloop"), "-C", str(work / "demo")]
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)
        print(f"  {name}: {seconds:.2f} s", flush=True)

    timed([str(BIN / "crowdloop"), "init", "--demo", str(work / "demo")], home)
    print("round 1 (trains once) ...", flush=True)
    timed([*crowdloop, "round", "--simulate"], home)
    server, api = prefect_server(work / "prefect-server")
    try:
        for i in range(args.repeats):
            print(f"repeat {i + 1}/{args.repeats}", flush=True)
            record("prefect ephemeral start: empty flow, PREFECT_HOME reused", timed(
                [sys.executable, "-c", EMPTY_FLOW], home)[0])
            record("prefect ephemeral start: empty flow, fresh PREFECT_HOME", timed(
                [sys.executable, "-c", EMPTY_FLOW], {"PREFECT_HOME": str(work / f"fresh-home-{i}")})[0])
            record("import prefect (no server)", timed([sys.executable, "-c", "import prefect"], home)[0])
            for label, env in (("local ephemeral server", home), ("running prefect server", {**home,
                                                                                            "PREFECT_API_URL": api})):
                timed([*crowdloop, "rollback", "0"], home)
                seconds, out = timed([*crowdloop, "round", "--simulate"], env)
                record(f"cached re-run, {label}: command", seconds)
                record(f"cached re-run, {label}: flow steps", step_seconds(out))
            # the same, with MLflow and all of cleanlab imported in the command's own process (as
            # the Python API runs a round): what the MLflow helper process saves
            timed([*crowdloop, "rollback", "0"], home)
            record("cached re-run, running prefect server, MLflow in the command's process", timed(
                [sys.executable, "-c", IN_PROCESS, "-C", str(work / "demo"), "round", "--simulate"],
                {**home, "PREFECT_API_URL": api})[0])
            record("crowdloop status", timed([*crowdloop, "status"], home)[0])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    medians = {name: round(statistics.median(values), 2) for name, values in results.items()}
    print("\nmedians over", args.repeats, "runs (s):")
    for name, value in medians.items():
        print(f"  {value:7.2f}  {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"repeats": args.repeats, "medians_s": medians, "runs_s": results}, indent=2))
    print(f"wrote {args.out} (campaign in {work})")


if __name__ == "__main__":
    main()
