"""POST /api/v1/services/aigc/video-generation/video-synthesis"""

from __future__ import annotations

import dataclasses
import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from vace_server.api.context import caller, ctx, request_id
from vace_server.api.validation import parse_create_request
from vace_server.api.wire_media import check_url
from vace_server.errors import AccessDenied
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.spec import EngineParams

router = APIRouter()

MAX_SEED = 2_147_483_647
CALLBACK_HEADER = "X-Vace-Callback-Url"


def draw_seed() -> int:
    return secrets.randbelow(MAX_SEED + 1)


def _callback_url(request: Request) -> str | None:
    """Our extension: `X-Vace-Callback-Url` receives this task's terminal state (a signed POST).
    Only its syntax is checked here; the address rules apply when it is called."""
    value = request.headers.get(CALLBACK_HEADER)
    if value is None:
        return None
    return check_url(value.strip(), CALLBACK_HEADER, oss_resolve=False)


# The contract's literal sentence, then the fix: this API only runs tasks asynchronously.
SYNC_REFUSED_MESSAGE = (
    f"{AccessDenied.default_message} Send the header `X-DashScope-Async: enable`: tasks run "
    "asynchronously (poll GET /api/v1/tasks/<task_id> for the result)."
)


@router.post("/api/v1/services/aigc/video-generation/video-synthesis")
async def create_task(request: Request) -> dict[str, object]:
    who = caller(request)
    if request.headers.get("x-dashscope-async", "").strip().lower() != "enable":
        raise AccessDenied(SYNC_REFUSED_MESSAGE)
    oss_resolve = request.headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"
    body = await request.body()
    c = ctx(request)
    spec = parse_create_request(body, oss_resolve=oss_resolve, draw_seed=draw_seed, served=c.served)
    # the engine settings it is accepted under (its served model's) travel with it: a retry
    # makes the same video
    engine = EngineParams.from_settings(c.settings_for(spec.model_name))
    spec = dataclasses.replace(spec, engine=engine)
    rid = request_id(request)

    def admit_and_create() -> TaskRecord:
        # One trip to the thread pool for both database calls (profiled: each hop costs
        # about as much as the insert itself).
        c.limiter.check_submit(who.account, lambda: c.store.count_in_flight(who.account))
        hooks = (_callback_url(request), c.settings.webhooks.webhook_url)
        callbacks = [url for url in hooks if url]
        return c.store.create(
            spec,
            account=who.account,
            api_key_id=who.api_key_id,
            request_id=rid,
            callback_urls=callbacks,
        )

    task = await run_in_threadpool(admit_and_create)
    return {"output": {"task_status": task.status.value, "task_id": task.id}, "request_id": rid}
