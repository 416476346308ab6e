"""Where a campaign stands between rounds: is the last batch answered, and has the stopping rule fired?

The one definition of each, for ``crowdloop round`` (:func:`check_may_run`), the
scheduled round (:func:`scheduled_decision`) and ``crowdloop status``. A request of
round N's batch is *answered* when its example has an annotation filed under round N
(whoever gave it); answers ingested before the next round are filed under the last
completed round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from crowdloop.tasks import stopping, store
from crowdloop.tasks.errors import CampaignError


@dataclass(frozen=True)
class Progress:
    """The last completed round and its batch.

    ``round`` is None before the first round (then ``asked`` and ``answered`` are 0).
    ``stop_reason``: why the stopping rule fires on that round under params.yaml as it is now
    (:func:`verdict`); None when it does not.
    """

    round: int | None
    asked: int
    answered: int
    stop_reason: str | None = None

    @property
    def waiting(self) -> int:
        return self.asked - self.answered


@dataclass(frozen=True)
class RoundDecision:
    """Whether a scheduled round runs, and the one-line reason shown in Prefect and the logs."""

    run: bool
    reason: str


def answered(batch_ids: pd.Series, annotations: pd.DataFrame, number: int) -> int:
    """How many of round ``number``'s requests (``batch_ids``, one per example) have an answer
    filed under that round."""
    back = set(annotations.loc[annotations["round"] == number, "example_id"].astype(str))
    return int(batch_ids.astype(str).isin(back).sum())


def stop_reason(metrics: dict) -> str | None:
    """Why the stopping rule fired, from a round's metrics (or a :func:`verdict`); None when it did not."""
    return (metrics.get("stop_reason") or "see metrics.json") if metrics.get("stop") else None


def verdict(history: Sequence[dict], cfg) -> dict:
    """The stopping rule on the last round of ``history`` (the rounds' metrics, oldest first) under the
    budget and stopping sections ``cfg`` (config.Config) has now: ``stop``, ``stop_reason``,
    ``stable_rounds``. A budget raised since the round lifts the stop the old one called
    (stopping.redecide); what the round recorded where it recorded no spend."""
    again = stopping.redecide(history, cfg.budget, cfg.stopping)
    return history[-1] if again is None else again


def progress(campaign: store.Campaign, cfg, annotations: pd.DataFrame | None = None,
             history: Sequence[dict] | None = None) -> Progress:
    """The campaign's :class:`Progress` under ``cfg`` (config.Config; ``annotations``: the stored ones,
    and ``history``: the completed rounds' metrics, oldest first, if already read)."""
    rounds = store.completed_rounds(campaign)
    if not rounds:
        return Progress(None, 0, 0)
    last = rounds[-1]
    annotations = store.read_annotations(campaign) if annotations is None else annotations
    batch_ids = store.read_batch(campaign, last)["example_id"]
    if history is None:
        history = [store.read_round_metrics(campaign, number) for number in rounds]
    return Progress(last, len(batch_ids), answered(batch_ids, annotations, last), stop_reason(verdict(history, cfg)))


def check_may_run(state: Progress, *, simulate: bool, force: bool) -> None:
    """Refuse (CampaignError) a hand-typed round while the last batch has no answer at all, or
    once the stopping rule has fired; ``force`` runs anyway. ``simulate`` is refused alike: its
    simulated annotators answer the new round's batch, not the one left waiting."""
    if force or state.round is None:
        return
    if state.asked and not state.answered:
        raise CampaignError(
            f"round {state.round}'s batch ({state.asked} annotations, data/rounds/{state.round:03d}/batch.csv) "
            "has no answers yet: ingest them with `crowdloop ingest FILE`, or pass --force to run anyway"
            + (" (--simulate answers the new round's batch, not that one)." if simulate else "."))
    if state.stop_reason:
        raise CampaignError(f"{_stopped(state)}, or pass --force to run anyway.")


def scheduled_decision(state: Progress, *, min_answered: float, force: bool) -> RoundDecision:
    """Run a scheduled round when forced, when none has run yet, or when at least one answer and
    at least ``min_answered`` of the last batch are back; skip (with the reason) otherwise, and
    always once the stopping rule has fired."""
    if force:
        return RoundDecision(True, "forced")
    if state.round is None:
        return RoundDecision(True, "first round: nothing to wait for")
    if state.stop_reason:
        return RoundDecision(False, f"{_stopped(state)}, or run with force")
    if state.asked == 0:
        return RoundDecision(False, f"round {state.round} asked for nothing (every example has its labels); "
                                    "nothing to wait for, run with force to train again")
    share = state.answered / state.asked
    reason = (f"{state.answered} of {state.asked} answers to round {state.round}'s batch are back ({share:.0%}; "
              f"schedule.min_answered is {min_answered:.0%})")
    return RoundDecision(state.answered > 0 and share >= min_answered, reason)


def _stopped(state: Progress) -> str:
    change = "budget" if "budget" in (state.stop_reason or "") else "stopping"
    return (f"under params.yaml as it is now, the stopping rule says stop after round {state.round} "
            f"({state.stop_reason}); "
            f"change the {change} section of params.yaml")
