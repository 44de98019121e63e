"""A task as clients see it: the query body, shared by the query and list routes and by
webhook deliveries."""

from __future__ import annotations

from typing import Any

from vace_server.api.context import AppContext
from vace_server.api.responses import query_body
from vace_server.api.waiting import queued_progress
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.progress import TaskProgress
from vace_server.tasks.status import TaskStatus


def task_body(c: AppContext, task: TaskRecord, request_id: str) -> dict[str, Any]:
    """The `GET /tasks/{id}` body, with a signed (local) or presigned (S3) `video_url` and our
    extra `progress` (for a PENDING task: its queue position and, when no worker can load
    the model, why it waits)."""
    video_url = None
    if task.status is TaskStatus.SUCCEEDED and task.output_key and task.expires_ms:
        video_url = c.storage.url_for(task.output_key, expires_ms=task.expires_ms)
    body = query_body(task, zone=c.zone, video_url=video_url, request_id=request_id)
    if task.status is TaskStatus.PENDING:
        body["output"]["progress"] = queued_progress(c, task)
    elif task.status is TaskStatus.RUNNING and task.progress:
        body["output"]["progress"] = _running_progress(task.progress)
    return body


def _running_progress(stored: dict[str, Any]) -> dict[str, Any]:
    """A running task's stored progress read through the progress model (the keys and stage
    names clients may see); a form it does not know is shown as stored, since the query must
    never fail over a courtesy field."""
    try:
        return TaskProgress.from_json(stored).to_json()
    except (ValueError, TypeError):
        return stored
