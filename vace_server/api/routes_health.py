"""Liveness and what the server is running."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from vace_server import __version__
from vace_server.api.context import ctx

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
