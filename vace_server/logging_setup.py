"""Process-wide logging: one JSON object per line (default) or plain text, every record
carrying the `request_id` of the HTTP request and the `task_id` of the task being handled."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime
from typing import TextIO

from vace_server.settings import DEFAULT_LOG_LEVEL

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
task_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("task_id", default=None)


class ContextFilter(logging.Filter):
    """Copies the current request and task ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        for key in ("request_id", "task_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s [%(task_id)s]: %(message)s"


def make_handler(fmt: str = "json", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `fmt` ("json" or "text") lines, with the request and task ids, to
    `stream` (default stderr)."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str = DEFAULT_LOG_LEVEL, fmt: str = "json") -> None:
    """Installs one stderr handler on the root logger. `level` and `fmt` ("json" or "text")
    come from the settings (`settings.logging`: VACE_LOG_LEVEL, VACE_LOG_FORMAT).

    uvicorn's own loggers are left unconfigured (`serve` passes `log_config=None`), so its
    records reach this handler too: one format for the whole log."""
    root = logging.getLogger()
    root.handlers[:] = [make_handler(fmt.lower())]
    root.setLevel(level.upper())
