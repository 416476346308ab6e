"""The local Dask workers crowdloop starts itself (flows/compute.py process_runner): where they report
and what they start with. Its own module: a Dask client left open by another test module's
cluster would take the jobs instead (prefect-dask uses a client that exists)."""

from __future__ import annotations

import dataclasses

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_local_workers_report_to_this_flows_prefect_server_and_keep_glibcs_malloc(monkeypatch):
    """The workers compute.process_runner starts here report to the flow's own Prefect API (no
    temporary server of their own) and start without Dask's MALLOC_TRIM_THRESHOLD_ (which turns
    glibc's sliding mmap threshold off: a page fault storm in every fit), and preload flows/worker_exit.py."""
    import os

    from prefect import flow
    from prefect.context import FlowRunContext

    from crowdloop.flows import compute
    from crowdloop.tasks import config

    monkeypatch.delenv(compute.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    names = ["MALLOC_TRIM_THRESHOLD_", "PREFECT_API_URL"]

    @flow(name="worker-environment")
    def environment() -> tuple[list, list, str]:
        runner = compute.process_runner(dataclasses.replace(config.load().compute, workers=2), jobs=2)
        seen = compute.run_all(runner, os.getenv, [{"key": name} for name in names], names=names)
        runner = compute.process_runner(dataclasses.replace(config.load().compute, workers=2), jobs=2)
        preloads = compute.run_all(runner, _preloads, [{}, {}], names=["a", "b"])
        return seen, preloads, str(FlowRunContext.get().client.api_url)

    (trim, api_url), preloads, here = environment()
    assert trim is None
    assert api_url == here
    assert preloads == [[compute.WORKER_EXIT]] * 2  # flows/worker_exit.py: each worker exits frozen


def _preloads() -> list[str]:
    from distributed import get_worker

    return [preload.name for preload in get_worker().preloads]
