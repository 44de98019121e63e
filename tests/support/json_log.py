"""Captures what the server's own JSON log handler writes, as parsed lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vace_server.logging_setup import make_handler


class JsonLog:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def lines(self) -> list[dict[str, Any]]:
        """Every line written so far; each must be one JSON object."""
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def of(self, request_id: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("request_id") == request_id]

    def at_least(self, level: int) -> list[dict[str, Any]]:
        return [x for x in self.lines() if logging.getLevelName(x["level"]) >= level]


@contextmanager
def json_log() -> Iterator[JsonLog]:
    """Adds the server's JSON handler (root logger, INFO) for the duration."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield JsonLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
