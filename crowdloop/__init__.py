"""crowdloop: active learning for noisy, multi-annotator labeling campaigns.

The Python API (what the ``crowdloop`` command calls) is :mod:`crowdloop.api`, importable
from here: ``crowdloop.init_demo``, ``init_campaign``, ``open_campaign``, ``run_round``,
``run_rounds``, ``ingest``, ``export``, ``export_labels``, ``labelstudio_push``, ``labelstudio_pull``, ``status``,
``history``, ``rollback``, ``push``, ``pull``, ``simulate``, ``verify``. Importing crowdloop loads no model
and contacts no server; the API (and pandas with it) loads on first use of one of these names, so
the ``crowdloop`` command can start its MLflow helper process before it imports anything heavy.
"""

__version__ = "0.1.0"
__all__ = ["Campaign", "CrowdloopError", "export", "export_labels", "history", "ingest", "init_campaign", "init_demo",
           "labelstudio_pull", "labelstudio_push", "open_campaign", "pull", "push", "rollback", "run_round",
           "run_rounds", "simulate", "status", "verify"]


def __getattr__(name: str):
    if name in __all__:
        from crowdloop import api

        return getattr(api, name)
    raise AttributeError(f"module 'crowdloop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
