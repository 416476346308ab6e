"""Talking to a Label Studio server through label-studio-sdk: the project, its tasks, its exports.

Optional (``pip install 'crowdloop[labelstudio]'``): the SDK is imported only when a
command talks to Label Studio. The server and the token come from the environment,
``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``: a personal access token (what Label
Studio 1.23 gives by default; the SDK trades it for short-lived access tokens) or a legacy
token where the organization still allows them. Neither is written to a file or a message.
What the server sends is read by :mod:`crowdloop.tasks.labelstudio_format`, never here.
"""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Sequence

from crowdloop.tasks import labelstudio_format, store
from crowdloop.tasks.errors import CrowdloopError

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
EXPORT_SECONDS = 600  # how long an export snapshot may take on the server


class LabelStudioError(CrowdloopError):
    """Label Studio cannot be reached, refuses the token, or lacks the project; the message says what to do."""


@dataclass(frozen=True)
class Pushed:
    """A push: the project (number, title), tasks imported now and tasks it already had, whether
    the project was created or its classes updated, and the round whose batch it was."""

    project: int
    title: str
    imported: int
    already: int
    created: bool
    config_updated: bool
    round: int | None = None


def round_tasks(campaign: store.Campaign, number: int) -> list[dict]:
    """Round ``number``'s batch as Label Studio tasks (labelstudio_format.batch_tasks)."""
    return labelstudio_format.batch_tasks(store.read_batch(campaign, number), round=number)


class Server:
    """A connection to the Label Studio of ``LABEL_STUDIO_URL`` (``environ``: os.environ if None)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.url = environ.get(URL_ENV, "").strip().rstrip("/")
        key = environ.get(KEY_ENV, "").strip()
        if not self.url:
            raise LabelStudioError(f"{URL_ENV} is not set; export {URL_ENV}=http://127.0.0.1:8080 "
                                   "(your Label Studio's address).")
        if not key:
            raise LabelStudioError(f"{KEY_ENV} is not set; export {KEY_ENV}=<token> with a personal access "
                                   "token from Label Studio (Account & Settings > Personal Access Token).")
        try:
            from label_studio_sdk import LabelStudio
        except ImportError:
            raise LabelStudioError("label-studio-sdk is not installed; pip install 'crowdloop[labelstudio]'.") from None
        with self.talking():
            self.client = LabelStudio(base_url=self.url, api_key=key, timeout=120)

    @contextmanager
    def talking(self):
        """Turn the SDK's failures into one sentence (never with the token)."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except httpx.HTTPError as err:
            raise LabelStudioError(f"cannot reach Label Studio at {URL_ENV}={self.url} ({err}); is it running "
                                   "(`label-studio start`), and is the address right?") from None
        except ApiError as err:
            if err.status_code == 401:
                raise LabelStudioError(f"Label Studio at {self.url} refused the token in {KEY_ENV} ({_detail(err)}); "
                                       "create a personal access token (Account & Settings) and export it.") from None
            hint = (f"; {URL_ENV} is the server's address, without /api: {self.url.removesuffix('/api')}"
                    if self.url.endswith("/api") else "")
            raise LabelStudioError(f"Label Studio at {self.url} answered {err.status_code} ({_detail(err)}){hint}.") \
                from None

    def project(self, ref: str | int, *, create_with: str | None = None) -> tuple[object, bool]:
        """The project titled (or numbered) ``ref`` and whether it was created now: a title that
        no project has is created with the labeling config ``create_with``, if given."""
        with self.talking():
            if isinstance(ref, int):
                found = [p for p in self.client.projects.list(ids=str(ref)) if p.id == ref]
            else:
                found = [p for p in self.client.projects.list(title=ref) if p.title == ref]
            if len(found) > 1:
                raise LabelStudioError(f"{len(found)} projects on {self.url} are titled {ref!r}; set "
                                       "labelstudio.project in params.yaml to the number of the one to use.")
            if found:
                return self.client.projects.get(found[0].id), False
            if isinstance(ref, int):
                raise LabelStudioError(f"Label Studio at {self.url} has no project number {ref}; set "
                                       "labelstudio.project in params.yaml to an existing project's number, or to "
                                       "a title (`crowdloop labelstudio push` creates a project with that title).")
            if create_with is None:
                raise LabelStudioError(f"Label Studio at {self.url} has no project titled {ref!r}; run `crowdloop "
                                       "labelstudio push` first, or fix labelstudio.project in params.yaml.")
            made = self.client.projects.create(title=ref, label_config=create_with,
                                               description="Batches chosen by crowdloop (active learning).")
            return self.client.projects.get(made.id), True

    def push(self, ref: str | int, tasks: list[dict], *, classes: Sequence[str]) -> Pushed:
        """Import the ``tasks`` the project lacks (by example and round), creating the project (or
        updating its classes) with crowdloop's labeling config first."""
        config = labelstudio_format.label_config(classes)
        project, created = self.project(ref, create_with=config)
        with self.talking():
            updated = not created and labelstudio_format.config_classes(project.label_config) != list(classes)
            if updated:
                self.client.projects.update(project.id, label_config=config)
            have = {labelstudio_format.task_key(task.data) for task in self.client.tasks.list(project=project.id)}
            new = [task for task in tasks if labelstudio_format.task_key(task["data"]) not in have]
            if new:
                self.client.projects.import_tasks(project.id, request=new)
        return Pushed(project.id, project.title, len(new), len(tasks) - len(new), created, updated)

    def pull(self, ref: str | int, folder: Path) -> Path:
        """The project's annotations as a Label Studio JSON export, ``completed_by`` with each
        user's id and email, saved in ``folder`` as ``project-<id>-at-<time>.json``."""
        project, _ = self.project(ref)
        with self.talking():
            exports = self.client.projects.exports
            snapshot = exports.create(project.id, title="crowdloop pull",
                                      serialization_options={"annotations__completed_by": {"only_id": False}})
            try:
                deadline = time.monotonic() + EXPORT_SECONDS
                while (status := exports.get(project.id, snapshot.id).status) not in ("completed", "failed"):
                    if time.monotonic() > deadline:
                        raise LabelStudioError(f"Label Studio at {self.url} did not finish exporting project "
                                               f"{project.id} in {EXPORT_SECONDS} s; try again later.")
                    time.sleep(1)
                if status == "failed":
                    raise LabelStudioError(f"Label Studio at {self.url} failed to export project {project.id}; "
                                           "see its log, then try again.")
                data = b"".join(exports.download(project.id, snapshot.id, export_type="JSON"))
            finally:
                exports.delete(project.id, snapshot.id)  # snapshots pile up on the server otherwise
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        return store.write_file(folder / f"project-{project.id}-at-{stamp}.json", data)


def _detail(err) -> str:
    """What the server said, in one line: a JSON ``detail``, else the body's text (an HTML page: its
    title), shortened."""
    body = err.body
    detail = str((body.get("detail") if isinstance(body, dict) else body) or "")
    if "<html" in detail.lower():
        title = re.search(r"<title>(.*?)</title>", detail, re.I | re.S)
        detail = f"an HTML page{': ' + title.group(1).strip() if title else ''}"
    return " ".join(detail.split())[:300] or "no detail"
