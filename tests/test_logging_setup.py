from __future__ import annotations

import json
import logging

import pytest

from vace_server.logging_setup import configure_logging, request_id_var, task_id_var


def test_json_lines_carry_request_and_task_ids(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "json")
        log = logging.getLogger("vace_server.test")
        r, t = request_id_var.set("req-1"), task_id_var.set("task-9")
        log.info("hello %s", "world")
        request_id_var.reset(r)
        task_id_var.reset(t)
        log.warning("no context")
        lines = [json.loads(x) for x in capsys.readouterr().err.strip().splitlines()]
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    first, second = lines[-2:]
    assert first["message"] == "hello world" and first["level"] == "INFO"
    assert (first["request_id"], first["task_id"]) == ("req-1", "task-9")
    assert "request_id" not in second and second["level"] == "WARNING"
