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
    glibc's sliding mmap threshold off: a page fault storm in every fit)."""
    import os

    from prefect import flow
    from prefect.context import FlowRunContext

    from crowdloop.flows import compute
    from crowdloop.tasks import config

    monkeypatch.delenv(compute.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    names = ["MALLOC_TRIM_THRESHOLD_", "PREFECT_API_URL"]

    @flow(name="worker-environment")
    def environment() -> tuple[list, str]:
        runner = compute.process_runner(dataclasses.replace(config.load().compute, workers=2), jobs=2)
        seen = compute.run_all(runner, os.getenv, [{"key": name} for name in names], names=names)
        return seen, str(FlowRunContext.get().client.api_url)

    (trim, api_url), here = environment()
    assert trim is None
    assert api_url == here
