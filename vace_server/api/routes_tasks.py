"""Query, list and cancel tasks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request

from vace_server.api.context import AppContext, caller, ctx, request_id
from vace_server.api.responses import list_entry, unknown_output
from vace_server.api.task_view import task_body
from vace_server.errors import UnsupportedOperation, field_invalid
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, ListFilter

router = APIRouter()

LIST_TIME_FORMAT = "%Y%m%d%H%M%S"
MAX_LIST_RANGE = timedelta(hours=24)
MAX_PAGE_SIZE = 100


@router.get("/api/v1/tasks/{task_id}")
def query_task(task_id: str, request: Request) -> dict[str, Any]:
    who = caller(request)
    c = ctx(request)
    c.limiter.check_query(who.account)
    rid = request_id(request)
    task = c.store.get(task_id, account=who.account)
    if task is None:
        return {"request_id": rid, "output": unknown_output(task_id)}
    return task_body(c, task, rid)


@router.post("/api/v1/tasks/{task_id}/cancel")
def cancel_task(task_id: str, request: Request) -> dict[str, Any]:
    who = caller(request)
    ctx(request).limiter.check_query(who.account)
    # Beyond upstream (PENDING only): a RUNNING task is stopped by its worker within one
    # denoising step and ends CANCELED.
    if ctx(request).store.request_cancel(task_id, account=who.account) is CancelOutcome.REFUSED:
        raise UnsupportedOperation()
    return {"request_id": request_id(request)}


@router.get("/api/v1/tasks")
@router.get("/api/v1/tasks/")
def list_tasks(request: Request) -> dict[str, Any]:
    who = caller(request)
    c = ctx(request)
    c.limiter.check_query(who.account)
    params = request.query_params
    page_no = _positive_int(params.get("page_no"), "page_no", default=1)
    page_size = _positive_int(params.get("page_size"), "page_size", default=10)
    if page_size > MAX_PAGE_SIZE:
        raise field_invalid("page_size")
    start_ms, end_ms = _time_range(c, params.get("start_time"), params.get("end_time"))
    status = params.get("status") or None
    if status is not None and status not in TaskStatus.__members__:
        raise field_invalid("status")
    if status == TaskStatus.UNKNOWN.value:
        records: list[TaskRecord] = []
        total = 0  # UNKNOWN is never stored: nothing to list
    else:
        flt = ListFilter(
            account=who.account,
            start_ms=start_ms,
            end_ms=end_ms,
            task_id=params.get("task_id") or None,
            model_name=params.get("model_name") or None,
            status=TaskStatus(status) if status else None,
            api_key_id=params.get("api_key_id") or None,
        )
        records, total = c.store.list_page(flt, page_no=page_no, page_size=page_size)
    rid = request_id(request)
    entries = [list_entry(t, region=c.settings.region) for t in records]
    jobs = [task_body(c, t, rid)["output"] for t in records]
    return {
        "request_id": rid,
        "total": total,
        "total_page": (total + page_size - 1) // page_size,
        "page_no": page_no,
        "page_size": page_size,
        "data": entries,
        # The 2.0 SDK's `jobs.list` reads the page from `tasks`, each entry shaped like a query's
        # `output` (string times); the 1.x SDK and the docs read `data` (epoch-ms times).
        "tasks": jobs,
    }


def _positive_int(raw: str | None, name: str, *, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise field_invalid(name) from None
    if value < 1:
        raise field_invalid(name)
    return value


def _time_range(c: AppContext, start: str | None, end: str | None) -> tuple[int, int]:
    start_dt = _parse_time(c, start, "start_time")
    end_dt = _parse_time(c, end, "end_time")
    if start_dt is None and end_dt is None:
        end_dt = datetime.now(tz=c.zone)
    if start_dt is None:
        assert end_dt is not None
        start_dt = end_dt - MAX_LIST_RANGE
    if end_dt is None:
        end_dt = start_dt + MAX_LIST_RANGE
    if end_dt < start_dt:
        raise field_invalid("end_time")
    if end_dt - start_dt > MAX_LIST_RANGE:
        raise field_invalid("end_time")
    return int(start_dt.timestamp() * 1000), int(end_dt.timestamp() * 1000)


def _parse_time(c: AppContext, raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.strptime(raw, LIST_TIME_FORMAT).replace(tzinfo=c.zone)
    except ValueError:
        raise field_invalid(name) from None
