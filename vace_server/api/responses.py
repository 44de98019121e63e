"""DashScope response bodies built from task records (wire names live here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vace_server.api.wire_names import wire_message
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.status import TaskStatus

VIDEO_RATIO = "standard"
SERVICE_KEY = "apikey:v1:aigc:video-generation:video-synthesis:{model}"


def format_time(ms: int, zone: ZoneInfo) -> str:
    """`YYYY-MM-DD HH:MM:SS.mmm` in `zone`."""
    dt = datetime.fromtimestamp(ms / 1000, tz=zone)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def unknown_output(task_id: str) -> dict[str, Any]:
    return {"task_id": task_id, "task_status": TaskStatus.UNKNOWN.value}


def query_body(
    task: TaskRecord, *, zone: ZoneInfo, video_url: str | None, request_id: str
) -> dict[str, Any]:
    """The `GET /tasks/{id}` body for a known task, per status."""
    output: dict[str, Any] = {
        "task_id": task.id,
        "task_status": task.status.value,
        "submit_time": format_time(task.created_ms, zone),
    }
    # Once a worker took it (a task canceled while it ran too; a requeued PENDING one waits).
    show_scheduled = task.status not in (TaskStatus.PENDING, TaskStatus.UNKNOWN)
    if show_scheduled and task.started_ms is not None:
        output["scheduled_time"] = format_time(task.started_ms, zone)
    if task.status.is_terminal and task.ended_ms is not None:
        output["end_time"] = format_time(task.ended_ms, zone)
    body: dict[str, Any] = {"request_id": request_id, "output": output}
    if task.status is TaskStatus.FAILED:
        output["code"] = task.error_code or "InternalError"
        output["message"] = wire_message(task.error_message or "")
    elif task.status is TaskStatus.SUCCEEDED:
        output["video_url"] = video_url or ""
        output["orig_prompt"] = task.spec.prompt
        if task.spec.prompt_extend:
            output["actual_prompt"] = task.actual_prompt or task.spec.prompt
        body["usage"] = {
            "video_duration": max(1, round(task.output_seconds or 0)),
            "video_ratio": VIDEO_RATIO,
            "video_count": 1,
            **engine_usage(task.effective),
        }
        stage_ms = (task.effective or {}).get("stage_ms")
        if isinstance(stage_ms, dict):  # this server's extension: where the time went
            body["usage"]["stage_ms"] = stage_ms
    return body


# This server's extension of `usage` (docs/contract.md §7.2): which preset, steps, guidance and
# seed produced the video, from the task's `effective` record (absent in rows written before
# it). The seed is the one drawn at submission when the request gave none: with it, the same
# request reproduces the video.
USAGE_ENGINE_FIELDS = ("preset", "steps", "guidance_scale", "seed")


def engine_usage(effective: dict[str, Any] | None) -> dict[str, Any]:
    found = effective or {}
    return {k: found[k] for k in USAGE_ENGINE_FIELDS if k in found}


def list_entry(task: TaskRecord, *, region: str) -> dict[str, Any]:
    """One entry of `GET /tasks`: times are epoch milliseconds."""
    entry: dict[str, Any] = {
        "api_key_id": task.api_key_id,
        "caller_parent_id": task.account,
        "caller_uid": task.account,
        "gmt_create": task.created_ms,
        "model_name": task.model_name,
        "region": region,
        "request_id": task.request_id,
        "status": task.status.value,
        "task_id": task.id,
        "user_api_unique_key": SERVICE_KEY.format(model=task.model_name),
    }
    if task.started_ms is not None and task.status is not TaskStatus.PENDING:
        entry["start_time"] = task.started_ms
    if task.status.is_terminal and task.ended_ms is not None:
        entry["end_time"] = task.ended_ms
    return entry
