"""Liveness (`/health`: in-process state only, never the database), readiness (`/ready`: the
database and the worker registry), and metrics."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from vace_server import __version__
from vace_server.api.context import AppContext, ctx, request_id
from vace_server.api.waiting import NO_WORKER_PREFIX, load_failure

log = logging.getLogger(__name__)

router = APIRouter()


def _load_error(workers: list[dict[str, Any]]) -> str | None:
    """The load error of this process's workers when none of them is ready."""
    if not workers or any(w["ready"] and w["alive"] for w in workers):
        return None
    return next((w["error"] for w in workers if w.get("error")), None)


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Liveness: answers from this process's own state (its worker children as their
    supervisor sees them), so a database outage never fails it. `status` is `degraded`, with
    the reason in `error`, while this process's workers cannot load their model."""
    c = ctx(request)
    workers = c.supervisor.snapshot() if c.supervisor else []
    models = {w["model"] for w in workers if w.get("model")}
    warnings = sorted({w["model_warning"] for w in workers if w.get("model_warning")})
    annotators = next((w["annotators"] for w in workers if w.get("annotators")), None)
    error = _load_error(workers)
    body: dict[str, Any] = {
        "status": "degraded" if error else "ok",
        "version": __version__,
        "model": sorted(models)[0] if len(models) == 1 else sorted(models),
        "warnings": warnings,
        "annotators": annotators,
        "workers": workers,
    }
    if error:
        body["error"] = f"{NO_WORKER_PREFIX}{error}"
    return body


def _unavailable(request: Request, message: str) -> JSONResponse:
    body = {"code": "ServiceUnavailable", "message": message, "request_id": request_id(request)}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def _readiness(c: AppContext) -> tuple[list[dict[str, Any]], str | None]:
    alive = c.workers.alive(c.settings.worker_alive_ms)
    return alive, None if alive else load_failure(c)


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers and at least one worker (on any machine) beat recently;
    else 503, saying why (database down, no worker, or why no worker can load its model)."""
    c = ctx(request)
    try:
        alive, failure = await run_in_threadpool(_readiness, c)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unavailable: %s", exc)
        return _unavailable(request, "The database is unavailable.")
    if alive:
        return JSONResponse({"status": "ready", "workers": len(alive)})
    if failure:
        return _unavailable(request, f"No worker is ready: {failure}")
    return _unavailable(
        request, "No worker is alive: tasks are accepted but wait until one starts."
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(ctx(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
