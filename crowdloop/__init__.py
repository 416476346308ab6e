"""crowdloop: active learning for noisy, multi-annotator labeling campaigns.

The Python API (what the ``crowdloop`` command calls) is :mod:`crowdloop.api`, importable
from here: ``crowdloop.init_demo``, ``init_campaign``, ``open_campaign``, ``run_round``,
``run_rounds``, ``ingest``, ``export``, ``labelstudio_push``, ``labelstudio_pull``, ``status``,
``history``, ``rollback``, ``push``, ``pull``, ``simulate``, ``verify``. Importing crowdloop loads no model
and contacts no server.
"""

from crowdloop.api import (Campaign, CrowdloopError, export, history, ingest, init_campaign, init_demo,
                           labelstudio_pull, labelstudio_push, open_campaign, pull, push, rollback, run_round,
                           run_rounds, simulate, status, verify)

__version__ = "0.1.0"
__all__ = ["Campaign", "CrowdloopError", "export", "history", "ingest", "init_campaign", "init_demo",
           "labelstudio_pull", "labelstudio_push", "open_campaign", "pull", "push", "rollback", "run_round",
           "run_rounds", "simulate", "status", "verify"]
