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
from vace_server.api.validation import MODEL_NOT_EXIST_MESSAGE
from vace_server.api.waiting import NO_WORKER_PREFIX, load_failure
from vace_server.errors import InvalidParameter

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
    if c.settings.engine.served_models:
        body["models"] = _health_per_model(c, workers)
    return body


def _health_per_model(c: AppContext, workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Each served model's embedded workers: how many, how many ready, the load error."""
    models: dict[str, Any] = {}
    for model in c.served.models():
        mine = [w for w in workers if w.get("served_model") == model]
        models[model] = {
            "names": list(c.served.aliases_of(model)),
            "workers": len(mine),
            "ready": sum(1 for w in mine if w["ready"] and w["alive"]),
            "error": _load_error(mine),
        }
    return models


def _unavailable(request: Request, message: str) -> JSONResponse:
    body = {"code": "ServiceUnavailable", "message": message, "request_id": request_id(request)}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def _readiness(c: AppContext) -> tuple[list[dict[str, Any]], str | None]:
    alive = c.workers.alive(c.settings.worker_alive_ms)
    return alive, None if alive else load_failure(c)


def _per_model_readiness(c: AppContext, only: str | None) -> tuple[dict[str, int], list[str]]:
    """Live workers per served model (all, or `only`'s), and the failure of each model that
    has none: `<model>: <why>`. Raises: SQLAlchemyError."""
    alive = c.workers.alive(c.settings.worker_alive_ms)
    models = [c.served.upload_model(only)] if only else c.served.models()
    counts = {m: sum(1 for w in alive if w.get("served_model") == m) for m in models}
    failures = {f.get("served_model"): f.get("error") for f in reversed(c.workers.failures())}
    missing = [
        f"{m}: {failures[m]}" if failures.get(m) else f"{m}: no worker is alive"
        for m, n in counts.items()
        if n == 0
    ]
    return counts, missing


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers and at least one worker (on any machine) beat recently;
    else 503, saying why (database down, no worker, or why no worker can load its model)."""
    c = ctx(request)
    if c.settings.engine.served_models:
        return await _ready_per_model(request, c)
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


async def _ready_per_model(request: Request, c: AppContext) -> JSONResponse:
    """With VACE_MODELS: 200 when every served model (or `?model=`'s, any of its names) has a
    live worker; else 503 naming each model without one and why."""
    only = request.query_params.get("model")
    if only is not None and not c.served.accepts(only):
        raise InvalidParameter(MODEL_NOT_EXIST_MESSAGE)
    try:
        counts, missing = await run_in_threadpool(_per_model_readiness, c, only)
    except SQLAlchemyError as exc:
        log.warning("readiness: database unavailable: %s", exc)
        return _unavailable(request, "The database is unavailable.")
    if missing:
        return _unavailable(request, "No worker is ready for " + "; ".join(missing))
    return JSONResponse({"status": "ready", "workers": sum(counts.values()), "models": counts})


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(ctx(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
