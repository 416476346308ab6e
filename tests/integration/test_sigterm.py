"""SIGTERM (a timeout, a service manager) ends `crowdloop round` and `crowdloop simulate` within
seconds, with a non-zero status, and takes every process they started with them (Prefect's
temporary server included); the campaign stays sound. A benchmark script, which runs the
simulation in its own Python process, stops the same way.

The commands run as real processes, one after another, each with its own temporary Prefect
server, and are signalled mid-way (the round mid-training).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from crowdloop import api
from crowdloop.tasks import demo, store, version

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CROWDLOOP = str(Path(sys.executable).parent / "crowdloop")
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


class Command:
    """`crowdloop ARGS` (or another ``program``) in its own process group (so the test can always clean
    up), its stderr collected."""

    def __init__(self, args: list[str], home: Path, program: tuple[str, ...] = (CROWDLOOP,)):
        env = {**os.environ, "PREFECT_HOME": str(home)}
        env.pop("PREFECT_API_URL", None)  # its own temporary server: the one that must not outlive it
        self.proc = subprocess.Popen([*program, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True, env=env, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True).start()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None and time.monotonic() < deadline, "".join(self.lines[-30:])
            time.sleep(0.1)

    def terminate(self) -> tuple[int, float, list[psutil.Process]]:
        """SIGTERM to the command alone; returns its exit status, seconds to exit, processes left."""
        children = psutil.Process(self.proc.pid).children(recursive=True)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            seconds = time.monotonic() - start
            os.killpg(self.proc.pid, signal.SIGKILL) if self.proc.poll() is None else None
        _, alive = psutil.wait_procs(children, timeout=3)
        for process in alive:  # never leave them behind, even when the test fails
            process.kill()
        return code, seconds, alive


@pytest.fixture
def dataset(tmp_path, tiny_model_dir):
    """A long-format dataset (150 + 30 examples, 3 answers each) and a params.yaml with the tiny model."""
    data = demo.make_demo(seed=3, n_pool=150, n_test=30, n_initial=0, n_annotators=6, answers_per_example=3)
    data.answers.to_csv(tmp_path / "answers.csv", index=False)
    data.examples.loc[:, ["example_id", "text", "gold"]].to_csv(tmp_path / "examples.csv", index=False)
    params = {"model": {"name": str(tiny_model_dir), "backend": "head", "max_length": 32}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_sigterm_stops_a_round_and_a_simulation_promptly_and_takes_their_processes(tmp_path, campaign_factory,
                                                                                  dataset):
    camp = campaign_factory(tmp_path / "camp")
    home = tmp_path / "prefect"
    simulate_args = [
        str(dataset / "answers.csv"), "--format", "long", "--examples", str(dataset / "examples.csv"),
        "--examples-gold-col", "gold", "--preset", "rte", "--rounds", "25", "--seeds", "1",
        "--strategies", "random", "--params", str(dataset / "params.yaml")]
    commands = {  # one after another: each must still be at work when signalled (a slow machine running
        # them side by side has seen the simulation finish all its rounds before its turn came)
        "round": lambda: Command(["-C", str(camp.root), "round", "--simulate"], home),
        "simulate": lambda: Command(["simulate", *simulate_args, "--out", str(tmp_path / "sim")], home),
        # what every script under benchmarks/ does: the simulation in the script's own process
        "benchmark": lambda: Command([*simulate_args, "--out", str(tmp_path / "bench")], home, program=(
            sys.executable, "-c", f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import _compare; "
                                  "_compare.simulate(sys.argv[1:])")),
    }
    for name, start in commands.items():
        command = start()
        command.wait_for("-fold out-of-sample predictions" if name == "round" else "round 2/25", timeout=240)
        code, seconds, left = command.terminate()  # the round mid-training, the simulations mid-way
        assert code != 0 and seconds < 10 and left == [], (name, code, seconds, left, "".join(command.lines[-20:]))
        assert "stopped by SIGTERM" in "".join(command.lines), (name, command.lines[-20:])

    assert api.verify(camp).findings == []
    assert version.round_tags(camp) == ["round-000"] and store.completed_rounds(camp) == []


def test_a_reader_that_stops_early_ends_the_command_quietly(tiny_campaign):
    """`crowdloop status | head -1`: the reader closes the pipe before the command writes to it."""
    proc = subprocess.Popen([CROWDLOOP, "-C", str(tiny_campaign.root), "status"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
