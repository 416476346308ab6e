"""Where the heavy steps run (flows/compute.py): params.yaml's compute section and its variable."""

from __future__ import annotations

import dataclasses

import pytest

from crowdloop.flows import compute
from crowdloop.tasks import simulation_protocol as protocol
from crowdloop.tasks import config
from crowdloop.tasks.errors import ConfigError


def _compute(**values) -> config.ComputeConfig:
    return dataclasses.replace(config.load().compute, **values)


def test_the_variable_names_the_cluster_over_params_yaml(monkeypatch):
    monkeypatch.delenv(compute.ADDRESS_ENV, raising=False)
    assert compute.dask_address(_compute()) is None
    assert compute.dask_address(_compute(dask_address="tcp://10.0.0.5:8786")) == "tcp://10.0.0.5:8786"
    monkeypatch.setenv(compute.ADDRESS_ENV, " tcp://127.0.0.1:8786 ")
    assert compute.dask_address(_compute(dask_address="tcp://10.0.0.5:8786")) == "tcp://127.0.0.1:8786"
    monkeypatch.setenv(compute.ADDRESS_ENV, "http://127.0.0.1:8786")
    with pytest.raises(ConfigError, match=r"\$CROWDLOOP_DASK_ADDRESS: 'http://127.0.0.1:8786' names the protocol"):
        compute.dask_address(_compute())


def test_a_scheduler_that_does_not_answer_is_one_line_before_any_work(monkeypatch):
    import socket

    from crowdloop.tasks.errors import CampaignError

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        silent = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
        # a listener that never speaks (a web server, another service) is not a scheduler: Dask hung on it
        # (a round with its address ran 70 s and more) before it failed with a traceback
        with pytest.raises(CampaignError, match=rf"what listens at {silent} is not a Dask scheduler \(it sent "
                                                r"no Dask handshake within 0.5 s\)"):
            compute.check_reachable(silent, timeout=0.5)
        closed = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
    monkeypatch.setenv(compute.ADDRESS_ENV, closed)
    with pytest.raises(CampaignError, match=rf"no Dask scheduler answers at {closed} .*start one") as err:
        compute.fit_mapper(_compute())  # a round asks for its fit mapper before it trains
    assert "\n" not in str(err.value)
    monkeypatch.setenv(compute.ADDRESS_ENV, "tcp://127.0.0.1:99999")
    with pytest.raises(ConfigError, match="names the port 99999; a port is 1 to 65535"):
        compute.dask_address(_compute())


def test_a_scheduler_that_speaks_first_passes():
    import socket
    import threading

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()

        def greet() -> None:  # as a Dask scheduler does: its handshake goes out as it accepts
            conn, _ = listening.accept()
            with conn:
                conn.sendall(b":handshake")

        thread = threading.Thread(target=greet)
        thread.start()
        compute.check_reachable(f"tcp://127.0.0.1:{listening.getsockname()[1]}", timeout=5)
        thread.join()


def test_auto_is_a_worker_per_core_and_one_job_or_one_worker_runs_here(monkeypatch):
    monkeypatch.delenv(compute.ADDRESS_ENV, raising=False)
    monkeypatch.setattr(compute.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert compute.workers(_compute(workers="auto")) == 3
    assert compute.workers(_compute(workers=5)) == 5
    assert compute.process_runner(_compute(workers="auto"), jobs=1) is None
    assert compute.process_runner(_compute(workers=1), jobs=10) is None
    assert compute.fit_mapper(_compute(workers=1)) is None
    runner = compute.process_runner(_compute(workers=2), jobs=10)
    assert runner.cluster_kwargs["n_workers"] == 2 and runner.cluster_kwargs["host"] == "127.0.0.1"
    assert compute.process_runner(_compute(workers=8), jobs=3).cluster_kwargs["n_workers"] == 3
    monkeypatch.setenv(compute.ADDRESS_ENV, "tcp://127.0.0.1:8786")
    monkeypatch.setattr(compute, "check_reachable", lambda address: None)  # as if a scheduler answered there
    assert compute.process_runner(_compute(workers=1), jobs=1).address == "tcp://127.0.0.1:8786"


def test_where_a_simulation_runs_is_not_part_of_what_it_is():
    base = config.load()
    preset = protocol.PRESETS["tutorial"]
    elsewhere = dataclasses.replace(base, compute=_compute(workers=7, dask_address="tcp://10.0.0.5:8786"))
    assert protocol.run_settings(elsewhere, preset) == protocol.run_settings(base, preset)
    assert "compute" not in protocol.run_settings(base, preset)["params"]


def test_jobs_run_here_in_order_and_report_each_as_it_finishes():
    finished = []
    results = compute.run_all(None, lambda x, y: x * y, [{"x": 2, "y": 3}, {"x": 4, "y": 5}], names=["a", "b"],
                              on_done=finished.append)
    assert results == [6, 20] and finished == [0, 1]


def test_a_cluster_without_a_prefect_server_named_is_a_warning_as_the_round_starts(monkeypatch, caplog):
    """Without PREFECT_API_URL, each Dask worker started a temporary Prefect server of its own, silently."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv(compute.ADDRESS_ENV, "tcp://127.0.0.1:8786")
    monkeypatch.setattr(compute, "check_reachable", lambda address: None)  # as if a scheduler answered there
    with temporary_settings(updates={PREFECT_API_URL: None}), caplog.at_level("WARNING", logger="crowdloop"):
        compute.fit_mapper(_compute())
    assert "PREFECT_API_URL is not set: each worker of the Dask cluster at tcp://127.0.0.1:8786 starts a " \
           "temporary Prefect server of its own" in caplog.text
    caplog.clear()
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}), \
            caplog.at_level("WARNING", logger="crowdloop"):
        compute.fit_mapper(_compute())
    assert "PREFECT_API_URL" not in caplog.text


class _LostScheduler:
    """A Dask runner whose scheduler is gone: submitting fails as prefect-dask's client does."""

    def __init__(self, address: str):
        self.address = address

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, *args, **kwargs):
        raise OSError(f"Timed out trying to connect to {self.address} after 30 s")


def test_a_scheduler_that_goes_away_mid_run_is_one_line_and_a_job_error_on_a_live_one_is_its_own():
    import socket
    import threading

    from crowdloop.tasks.errors import CampaignError

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        closed = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
    # Dask's own end: 30 s of reconnecting, then an OSError under some 380 lines of tracebacks
    with pytest.raises(CampaignError, match=rf"the Dask scheduler at {closed} went away during the run "
                                            r"\(Connection refused\); start it and its workers again and "
                                            r"rerun the command \(a round starts over, a simulation goes on") as err:
        compute.run_all(_LostScheduler(closed), abs, [{"x": 1}], names=["a"])
    assert "\n" not in str(err.value)
    with socket.socket() as listening:  # a scheduler still there: the error is the job's, unchanged
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        accepted = []

        def speak_and_say_nothing_more():
            accepted.append(listening.accept()[0])
            accepted[0].sendall(b":handshake")

        thread = threading.Thread(target=speak_and_say_nothing_more)
        thread.start()
        with pytest.raises(OSError, match="Timed out trying to connect"):
            compute.run_all(_LostScheduler(f"tcp://127.0.0.1:{listening.getsockname()[1]}"), abs, [{"x": 1}],
                            names=["a"])
        thread.join()
        accepted[0].close()


def test_the_dask_clients_tracebacks_of_a_lost_scheduler_are_left_out_and_its_other_errors_kept(caplog):
    import asyncio
    import logging

    client_log = logging.getLogger("distributed.client")
    with compute._quiet_dask():
        for error in (OSError("Connection refused"), asyncio.CancelledError()):
            try:
                raise error
            except BaseException:
                client_log.exception("")  # as the client logs giving up its reconnection
        client_log.error("a line of its own")
    client_log.exception("", exc_info=OSError("after the run"))
    assert [(r.getMessage(), bool(r.exc_info)) for r in caplog.records if r.name == client_log.name] == [
        ("a line of its own", False), ("", True)]


def test_a_closing_local_worker_freezes_what_it_holds():
    """flows/worker_exit.py, preloaded into the local workers (the integration test checks they have
    it): as a worker closes, its objects leave the interpreter's last collections."""
    import gc

    from crowdloop.flows import worker_exit

    assert compute.WORKER_EXIT == worker_exit.__name__
    gc.unfreeze()
    try:
        worker_exit.dask_teardown(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_local_cluster_serves_http_on_a_free_loopback_port_not_8787(recwarn):
    """Another cluster holding Dask's default port 8787 gives no warning, and nothing listens beyond 127.0.0.1."""
    import socket

    from distributed import LocalCluster

    kwargs = compute.process_runner(_compute(workers=2), jobs=2).cluster_kwargs
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8787))
        except OSError:
            pass  # held already: the case this test is about
        taken.listen()
        with LocalCluster(n_workers=0, host=kwargs["host"], dashboard_address=kwargs["dashboard_address"],
                          processes=True) as cluster:
            link = cluster.dashboard_link
    assert link.startswith("http://127.0.0.1:") and ":8787/" not in link
    assert not [w for w in recwarn if "already in use" in str(w.message)]
