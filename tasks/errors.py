"""The errors a user can fix, under one base class.

Every failure caused by the user's input or by the campaign's state raises a
subclass of :class:`CrowdloopError` whose message is one sentence: what is wrong,
where (file and line for input files) and what to do. The CLI prints that sentence
and exits with status 2, without a traceback; anything else is a bug and keeps its
traceback. Each module defines its own subclass next to the code that raises it
(``ConfigError`` in config, ``IngestError`` in ingest, ...); the two used by
several modules live here, and ``IngestError``, raised by ingest and the
Label Studio format it reads.
"""

from __future__ import annotations


class CrowdloopError(Exception):
    """A problem the user can fix; the message says what, where and what to do."""


class CampaignError(CrowdloopError):
    """The campaign (or simulation folder) is not in a state that allows the command."""


class DataError(CrowdloopError, ValueError):
    """The labels collected so far cannot support a step (e.g. one class only)."""


class ConfigError(CrowdloopError, ValueError):
    """A ``params.yaml`` (or a flag standing in for one of its keys) that cannot be used;
    the message names the file and the key."""


class IngestError(CrowdloopError, ValueError):
    """An answer file that cannot be stored; the message names file, line (or task) and what to do."""
