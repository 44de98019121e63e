"""Liveness and what the server is running."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from vace_server import __version__
from vace_server.api.context import ctx, request_id

router = APIRouter()


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    c = ctx(request)
    workers = c.supervisor.snapshot() if c.supervisor else []
    models = {w["model"] for w in workers if w.get("model")}
    warnings = sorted({w["model_warning"] for w in workers if w.get("model_warning")})
    annotators = next((w["annotators"] for w in workers if w.get("annotators")), None)
    return {
        "status": "ok",
        "version": __version__,
        "model": sorted(models)[0] if len(models) == 1 else sorted(models),
        "warnings": warnings,
        "annotators": annotators,
        "workers": workers,
        "queue": c.store.count_by_status(),
    }


@router.get("/ready")
def ready(request: Request) -> JSONResponse:
    """200 when at least one worker (on any machine) beat recently, else 503."""
    c = ctx(request)
    alive = c.workers.alive(c.settings.worker_alive_ms)
    if alive:
        return JSONResponse({"status": "ready", "workers": len(alive)})
    body = {
        "code": "ServiceUnavailable",
        "message": "No worker is alive: tasks are accepted but wait until one starts.",
        "request_id": request_id(request),
    }
    return JSONResponse(body, status_code=503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(ctx(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
