"""Why a PENDING task waits, as the query shows it: its place in the queue and, when no
worker is ready anywhere, the load error the worker registry recorded (any replica, any
machine)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from vace_server.api.context import AppContext
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.progress import TaskProgress

log = logging.getLogger(__name__)

NO_WORKER_PREFIX = "no worker can run this model: "


def load_failure(c: AppContext) -> str | None:
    """`no worker can run this model: <error>` from the newest fresh failure record, or None.
    Raises: SQLAlchemyError (the registry could not be read)."""
    failures = c.workers.failures()
    if not failures:
        return None
    return f"{NO_WORKER_PREFIX}{failures[0].get('error') or 'unknown error'}"


def queued_progress(c: AppContext, task: TaskRecord) -> dict[str, Any]:
    """The `progress` of a PENDING task. Side effects: reads the queue and the registry."""
    models = None  # one model: one queue
    if c.settings.engine.served_models:  # a model's tasks queue for that model's workers only
        models = c.served.aliases_of(c.served.upload_model(task.model_name)) or (task.model_name,)
    position = c.store.queue_position(task, models=models)
    message = None
    try:
        reason = load_failure(c)  # one read; usually there is no failure on record
        if reason and not c.workers.alive(c.settings.worker_alive_ms, tidy=False):
            message = reason
    except SQLAlchemyError as exc:  # the hint is a courtesy: never fail the query for it
        log.warning("could not read the worker registry: %s", exc)
    return TaskProgress.queued(position, message).to_json()
