"""Preloaded into the local Dask workers that :mod:`crowdloop.flows.compute` starts.

A worker process ends like any Python process: the interpreter collects garbage several
times on its way out, walking every object torch, transformers, pandas and Prefect made
(about a second per worker here, while the nanny, and so the simulation, waits for it).
The process's memory goes back to the system when it exits anyway, so as the worker
closes, everything it holds is frozen out of those collections (:func:`gc.freeze`); the
`crowdloop` command does the same as it exits (:func:`crowdloop.cli.exit_frozen`).
"""

from __future__ import annotations

import gc


def dask_teardown(worker) -> None:
    """Called by Dask as the worker starts to close."""
    gc.freeze()
