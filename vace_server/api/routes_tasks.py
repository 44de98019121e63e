"""Query, list and cancel tasks.

Every list parameter is bounded before it reaches the database: `page_no` 1..2147483647,
`page_size` 1..100 (plain ASCII digits), times exactly `YYYYMMDDhhmmss` with a year from 1970 to
9998, text filters storable text of at most 256 characters. A task id in a path that no task
can have (NUL, a replaced invalid byte sequence, over 128 characters) is an unknown task, answered
without a database round trip."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from vace_server.api.context import AppContext, caller, ctx, request_id
from vace_server.api.responses import list_entry, unknown_output
from vace_server.api.task_view import task_body
from vace_server.api.wire_values import INT32_MAX, is_clean_text, parse_decimal
from vace_server.errors import UnsupportedOperation, field_invalid
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, ListFilter

router = APIRouter()

LIST_TIME_DIGITS = 14  # YYYYMMDDhhmmss
LIST_YEARS = (1970, 9998)  # so that the 24 h default range around a time always exists
MAX_LIST_RANGE = timedelta(hours=24)
MAX_PAGE_NO = INT32_MAX
MAX_PAGE_SIZE = 100
MAX_FILTER_CHARS = 256
MAX_TASK_ID_CHARS = 128


def plausible_task_id(task_id: str) -> bool:
    """False for an id no stored task can have; such an id is simply an unknown task."""
    return len(task_id) <= MAX_TASK_ID_CHARS and is_clean_text(task_id) and "\ufffd" not in task_id


@router.get("/api/v1/tasks/{task_id}", response_model=None)
async def query_task(task_id: str, request: Request) -> JSONResponse:
    # The hot path of every polling client: one thread-pool hop for the blocking reads (a
    # sync endpoint takes a second one to serialise the answer), and the body, plain JSON
    # types only, rendered as it is (no response-model pass over it).
    who = caller(request)
    c = ctx(request)
    rid = request_id(request)

    def read() -> dict[str, Any]:
        c.limiter.check_query(who.account)
        task = c.store.get(task_id, account=who.account) if plausible_task_id(task_id) else None
        if task is None:
            return {"request_id": rid, "output": unknown_output(task_id)}
        return task_body(c, task, rid)

    return JSONResponse(await run_in_threadpool(read))


@router.post("/api/v1/tasks/{task_id}/cancel", response_model=None)
async def cancel_task(task_id: str, request: Request) -> JSONResponse:
    who = caller(request)
    c = ctx(request)

    def cancel() -> None:
        c.limiter.check_query(who.account)
        # Beyond upstream (PENDING only): a RUNNING task is stopped by its worker within one
        # denoising step and ends CANCELED.
        if not plausible_task_id(task_id):
            raise UnsupportedOperation()  # what an unknown task gets
        if c.store.request_cancel(task_id, account=who.account) is CancelOutcome.REFUSED:
            raise UnsupportedOperation()

    # One thread-pool hop, as for the query (a sync endpoint takes a second to serialise).
    await run_in_threadpool(cancel)
    return JSONResponse({"request_id": request_id(request)})


@router.get("/api/v1/tasks", response_model=None)
@router.get("/api/v1/tasks/", response_model=None)
async def list_tasks(request: Request) -> JSONResponse:
    # One thread-pool hop for the blocking work, as for the query.
    who = caller(request)
    c = ctx(request)
    rid = request_id(request)
    return JSONResponse(await run_in_threadpool(_list_page, c, who.account, request, rid))


def _list_page(c: AppContext, account: str, request: Request, rid: str) -> dict[str, Any]:
    """The list call's body (blocking: the limiter and the store). Raises: the API errors."""
    c.limiter.check_query(account)
    params = request.query_params
    page_no = _query_int(params.get("page_no"), "page_no", default=1, high=MAX_PAGE_NO)
    page_size = _query_int(params.get("page_size"), "page_size", default=10, high=MAX_PAGE_SIZE)
    start_ms, end_ms = _time_range(c, params.get("start_time"), params.get("end_time"))
    status = params.get("status") or None
    if status is not None and status not in TaskStatus.__members__:
        raise field_invalid("status")
    if status == TaskStatus.UNKNOWN.value:
        records: list[TaskRecord] = []
        total = 0  # UNKNOWN is never stored: nothing to list
    else:
        flt = ListFilter(
            account=account,
            start_ms=start_ms,
            end_ms=end_ms,
            task_id=_query_text(params.get("task_id"), "task_id"),
            model_name=_query_text(params.get("model_name"), "model_name"),
            status=TaskStatus(status) if status else None,
            api_key_id=_query_text(params.get("api_key_id"), "api_key_id"),
        )
        records, total = c.store.list_page(flt, page_no=page_no, page_size=page_size)
    entries = [list_entry(t, region=c.settings.http.region) for t in records]
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


def _query_int(raw: str | None, name: str, *, default: int, high: int) -> int:
    """An optional integer in [1, high] written in ASCII digits. Raises: InvalidParameter."""
    if raw is None or raw == "":
        return default
    value = parse_decimal(raw)
    if value is None or not 1 <= value <= high:
        raise field_invalid(name)
    return value


def _query_text(raw: str | None, name: str) -> str | None:
    """An optional text filter; empty means no filter. Raises: InvalidParameter."""
    if not raw:
        return None
    if len(raw) > MAX_FILTER_CHARS or not is_clean_text(raw):
        raise field_invalid(name)
    return raw


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
    """`YYYYMMDDhhmmss` in the configured zone, or None when absent. Raises: InvalidParameter
    (not 14 ASCII digits, no such date or time, year outside LIST_YEARS)."""
    if not raw:
        return None
    if len(raw) != LIST_TIME_DIGITS or parse_decimal(raw) is None:
        raise field_invalid(name)
    year = int(raw[0:4])
    if not LIST_YEARS[0] <= year <= LIST_YEARS[1]:
        raise field_invalid(name)
    month, day, hour, minute, second = (int(raw[i : i + 2]) for i in range(4, 14, 2))
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=c.zone)
    except ValueError:  # Feb 30, month 13, hour 24, ...
        raise field_invalid(name) from None
