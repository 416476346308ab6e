"""Where the heavy steps run: simulation arms × seeds and a round's fold models, in parallel.

``compute`` in params.yaml picks a Prefect task runner (``$CROWDLOOP_DASK_ADDRESS`` wins over
``compute.dask_address``):

| what | with a Dask address | without, ``workers`` > 1 | ``workers`` = 1 |
| --- | --- | --- | --- |
| simulation arms × seeds | that cluster's workers | a ``LocalCluster`` of worker processes | one after another, here |
| a round's fold models | that cluster's workers | threads of this process | one after another, here |

Arms go to processes because a round holds Python's lock most of the time (pandas,
cleanlab, L-BFGS-B); fold models go to threads because a round is too short to pay for
starting processes. Every job is seeded by what it is (arm, seed, fold), never by where it
runs, and fits use one BLAS thread (:mod:`crowdloop.tasks.models.logistic`), so the results
do not depend on the runner or the number of workers.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Callable, Sequence

from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from crowdloop.flows import steps
from crowdloop.tasks.config import ComputeConfig
from crowdloop.tasks.config_checks import dask_address_problem
from crowdloop.tasks.errors import CampaignError, ConfigError

log = logging.getLogger("crowdloop")
ADDRESS_ENV = "CROWDLOOP_DASK_ADDRESS"
LOOPBACK_ANY_PORT = "127.0.0.1:0"  # where a local cluster's scheduler serves HTTP
WORKER_EXIT = "crowdloop.flows.worker_exit"  # local workers exit without the interpreter's last collections


def dask_address(compute: ComputeConfig) -> str | None:
    """The scheduler to run on: ``$CROWDLOOP_DASK_ADDRESS`` when set, else ``compute.dask_address``."""
    address = os.environ.get(ADDRESS_ENV, "").strip()
    if not address:
        return compute.dask_address
    problem = dask_address_problem(address)
    if problem:
        raise ConfigError(f"${ADDRESS_ENV}: {problem}.")
    return address


def workers(compute: ComputeConfig) -> int:
    """Jobs at a time on this machine: ``compute.workers``, ``auto`` = the cores this process may use."""
    if compute.workers != "auto":
        return int(compute.workers)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_runner(compute: ComputeConfig, *, jobs: int) -> TaskRunner | None:
    """The runner for ``jobs`` simulation arms × seeds; None: one after another in this process."""
    address = dask_address(compute)
    if address:
        _check_cluster(address)
        runner = _dask(address=address)
        log.info("the %d runs go to the Dask cluster at %s; their round lines are in its workers' logs", jobs,
                 address)
        return runner
    count = min(workers(compute), jobs)
    if count <= 1:
        return None
    # Dask's nanny starts each worker with one BLAS/OpenMP thread, so processes do not fight over cores.
    # The scheduler always serves HTTP (its health routes); on a free loopback port, not 8787, which
    # another cluster may hold (Dask would warn in four lines and take another port anyway).
    return _dask(cluster_kwargs={"n_workers": count, "threads_per_worker": 1, "processes": True,
                                 "host": "127.0.0.1", "dashboard_address": LOOPBACK_ANY_PORT, "env": _worker_env(),
                                 "preload": [WORKER_EXIT]})


def _worker_env() -> dict[str, str]:
    """Set in each local worker as it starts: the Prefect API this process reports to. Without it, a
    worker that finds no ``PREFECT_API_URL`` starts a temporary Prefect server of its own (seconds of
    CPU, then a share of a core while its arms run), and its runs are not recorded beside this one."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    url = getattr(getattr(context, "client", None), "api_url", None)
    return {"PREFECT_API_URL": str(url)} if url else {}


def fit_mapper(compute: ComputeConfig) -> Callable[[Callable, list[dict]], list] | None:
    """How a round fits its fold models (:func:`crowdloop.tasks.predict.fit_models`'s ``map_fits``):
    on the Dask cluster, or on threads here; None: one after another."""
    address = dask_address(compute)
    count = workers(compute)
    if not address and count <= 1:
        return None
    if address:
        _check_cluster(address)  # now, before the round's work, not when its first fit is due
        log.info("fold models are fitted on the Dask cluster at %s", address)

    def map_fits(fit: Callable, jobs: list[dict]) -> list:
        runner = _dask(address=address) if address else ThreadPoolTaskRunner(max_workers=min(count, len(jobs)))
        names = [f"fit {i + 1}/{len(jobs)}" for i in range(len(jobs))]
        return run_all(runner, fit, jobs, names=names)

    return map_fits


def run_all(runner: TaskRunner | None, function: Callable, calls: Sequence[dict], *, names: Sequence[str],
            on_done: Callable[[int], None] | None = None) -> list:
    """``function(**call)`` for every call, through ``runner`` (None: here, one after another).

    Returns the results in the order of ``calls``, whatever order they finish in.
    ``on_done(i)`` is called here as call ``i`` finishes (a hook for progress); the
    first failure is raised once the runner has stopped its other jobs.
    """
    done = on_done or (lambda i: None)
    if runner is None:
        results = []
        for i, call in enumerate(calls):
            results.append(function(**call))
            done(i)
        return results
    level = log.getEffectiveLevel()
    try:
        with _one_blas_thread(), _quiet_dask(), _glibc_malloc(), runner:
            futures = [runner.submit(steps.on_worker, {"name": name, "function": function, "kwargs": call,
                                                       "log_level": level, "driver_pid": os.getpid()})
                       for name, call in zip(names, calls)]
            index = {future.task_run_id: i for i, future in enumerate(futures)}
            for future in as_completed(futures):
                future.result()  # raises the job's error
                done(index[future.task_run_id])
            return [future.result() for future in futures]
    except Exception:
        _raise_if_gone(getattr(runner, "address", None))
        raise


def _check_cluster(address: str) -> None:
    """Before jobs go to the cluster at ``address``: a scheduler answers there, and a Prefect server is named."""
    check_reachable(address)
    _warn_without_server(address)


def _warn_without_server(address: str) -> None:
    """Say so when no ``PREFECT_API_URL`` is set: this command's temporary Prefect server is not passed on
    with the jobs, so every Dask worker that runs one starts a temporary server of its own (seconds
    each; its runs are not recorded beside this command's; it can outlive a worker that is killed)."""
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        log.warning("PREFECT_API_URL is not set: each worker of the Dask cluster at %s starts a temporary "
                    "Prefect server of its own for its jobs; start a server the workers can reach and export "
                    "PREFECT_API_URL (README \"On a Dask cluster\")", address)


def _raise_if_gone(address: str | None) -> None:
    """CampaignError, in one line, when the scheduler at ``address`` no longer answers: a scheduler
    that went away mid-run ends in Dask's OSError ('Timed out trying to connect ... after 30 s') and
    hundreds of lines of tracebacks, which name neither the cause nor what to do."""
    reason = address and unreachable(address, timeout=5.0)
    if reason:
        raise CampaignError(f"the Dask scheduler at {address} went away during the run ({reason}); start it "
                            f"and its workers again and rerun the command (a round starts over, a simulation "
                            f"goes on from its checkpoints).") from None


def _dask(**kwargs) -> TaskRunner:
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(**kwargs)


def check_reachable(address: str, *, timeout: float = 10.0) -> None:
    """CampaignError, in one line, unless something accepts a connection at the scheduler ``address``
    (tcp://host:port) within ``timeout`` seconds: otherwise Dask would try for 30 s per attempt and
    end in a traceback."""
    reason = unreachable(address, timeout=timeout)
    if reason == NOT_A_SCHEDULER:
        raise CampaignError(f"what listens at {address} is not a Dask scheduler (it sent no Dask handshake "
                            f"within {timeout:g} s); correct ${ADDRESS_ENV} / compute.dask_address.")
    if reason:
        raise CampaignError(f"no Dask scheduler answers at {address} ({reason}); start one "
                            f"(`dask scheduler --host ...`, README \"On a Dask cluster\") or correct "
                            f"${ADDRESS_ENV} / compute.dask_address.")


NOT_A_SCHEDULER = "no Dask handshake"


def unreachable(address: str, *, timeout: float) -> str | None:
    """Why no Dask scheduler answers at ``address`` (the socket's error, or :data:`NOT_A_SCHEDULER`);
    None when one does."""
    import socket

    scheme, _, rest = address.strip().rpartition("://")
    host, _, port = rest.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as conn:
            # a Dask scheduler speaks first over plain TCP (its handshake); anything else (a web server)
            # waits for us, and Dask would wait for it 30 s per attempt
            greeted = conn.recv(1) if scheme in ("", "tcp") else b"-"
    except TimeoutError:
        greeted = b""
    except OSError as err:
        return str(err.strerror or err)
    return None if greeted else NOT_A_SCHEDULER


@contextmanager
def _quiet_dask():
    """Dask's own lines (a worker started, a connection closed) only when something failed: its
    loggers reach the console through Prefect's root handler, whose level is WARNING. The client's
    tracebacks of a lost connection to the scheduler (35 lines as it gives up reconnecting) are left
    out: the command's own error says what happened (:func:`_raise_if_gone`)."""
    dask_log, client_log = logging.getLogger("distributed"), logging.getLogger("distributed.client")
    before = dask_log.level
    dask_log.setLevel(logging.ERROR)
    client_log.addFilter(_without_connection_tracebacks)
    try:
        yield
    finally:
        dask_log.setLevel(before)
        client_log.removeFilter(_without_connection_tracebacks)


def _without_connection_tracebacks(record: logging.LogRecord) -> bool:
    """False for a log record that carries a lost connection (an OSError, or the cancelled reconnection)."""
    import asyncio

    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, (OSError, asyncio.CancelledError))


@contextmanager
def _glibc_malloc():
    """Local Dask workers keep glibc's own memory settings. Dask's nanny starts them with
    ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory back to the system), and setting it
    also turns off glibc's sliding mmap threshold: every array over 128 KiB is then mapped
    fresh from the kernel and unmapped when freed. A round makes thousands of them (fold
    feature matrices, sparse index arrays over 2**18 n-gram columns); on this 2-core machine
    the politeness benchmark's workers spent a fifth of their CPU time in the kernel for it.
    Arms are short-lived processes: nothing to trim. Workers of a cluster started elsewhere
    keep their own settings."""
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        yield


def _one_blas_thread():
    """BLAS and OpenMP on one thread in this process while its threads fit models: each fit sets
    that limit itself, but the limit is process-wide, so one thread ending its fit would lift it
    for another still fitting."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
