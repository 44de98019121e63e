"""The FastAPI application: wiring only (routes live in routes_*.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from vace_server.api import (
    routes_create,
    routes_docs,
    routes_health,
    routes_outputs,
    routes_playground,
    routes_tasks,
    routes_uploads,
)
from vace_server.api.accounts import KeyRing, load_or_generate_key
from vace_server.api.body_limit import BodyLimitMiddleware
from vace_server.api.context import AppContext
from vace_server.api.errors import install_error_handlers
from vace_server.api.metrics import Metrics
from vace_server.api.openapi_document import install_openapi
from vace_server.api.ratelimit import RateLimiter
from vace_server.api.request_context import RequestContextMiddleware
from vace_server.api.summary import KeySource, key_source
from vace_server.api.task_view import task_body
from vace_server.api.wire_names import ServedNames
from vace_server.media.fetch import UrlFetcher
from vace_server.runtime import open_storage, open_store
from vace_server.settings import Settings, reveal
from vace_server.tasks.maintenance import Maintenance
from vace_server.tasks.ratebuckets import SharedBuckets
from vace_server.tasks.uploads import UploadStore
from vace_server.tasks.workers import WorkerRegistry
from vace_server.webhooks import signing
from vace_server.webhooks.dispatcher import Dispatcher
from vace_server.webhooks.outbox import Outbox

log = logging.getLogger(__name__)


def build_keyring(settings: Settings) -> tuple[KeyRing, KeySource]:
    """Configured keys, else (auth on) the generated key in the data folder. The source is
    what the start-up summary shows (a key generated now: the key itself, once)."""
    keys = KeyRing.parse(
        settings.accounts.api_keys.get_secret_value(), auth_disabled=settings.accounts.auth_disabled
    )
    if len(keys) or settings.accounts.auth_disabled:
        return keys, key_source(settings, count=len(keys), file=None, generated=None)
    key, generated = load_or_generate_key(settings.store.data_dir)
    path = settings.store.data_dir / "api_key"
    log.info("%s the API key stored in %s", "generated" if generated else "using", path)
    source = key_source(settings, count=1, file=path, generated=key if generated else None)
    return KeyRing.parse(key), source


def build_context(settings: Settings) -> AppContext:
    store = open_store(
        settings, migrate=True, retry_seconds=settings.store.api_database_retry_seconds
    )
    storage = open_storage(settings)
    workers = WorkerRegistry(store.engine)
    served = ServedNames.from_settings(settings)
    per_model = served if settings.engine.served_models else None
    keys, source = build_keyring(settings)
    return AppContext(
        settings=settings,
        store=store,
        storage=storage,
        keys=keys,
        key_source=source,
        zone=ZoneInfo(settings.http.time_zone),
        limiter=RateLimiter.from_settings(
            settings,
            SharedBuckets(store.engine) if settings.accounts.rate_limit_shared else None,
        ),
        workers=workers,
        metrics=Metrics(store, workers, alive_ms=settings.worker_alive_ms, served=per_model),
        served=served,
    )


def build_dispatcher(context: AppContext) -> Dispatcher:
    """Webhook sender: task bodies as the query shows them, through the hostile-URL client."""
    settings = context.settings
    return Dispatcher(
        Outbox(context.store.engine),
        UrlFetcher(settings),
        lambda task, rid: task_body(context, task, rid),
        secret=signing.load_or_create_secret(
            settings.store.data_dir, reveal(settings.webhooks.webhook_secret)
        ),
        timeout=settings.webhooks.webhook_timeout,
    )


def create_app(settings: Settings) -> FastAPI:
    """Builds the app; the lifespan starts worker children and housekeeping."""
    context = build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        maintenance = Maintenance(
            context.store,
            context.storage,
            interval=settings.queue.maintenance_seconds,
            task_timeout_ms=int(settings.store.task_timeout_hours * 3_600_000),
            uploads=app.state.uploads.store,
        )
        maintenance.start()
        dispatcher = build_dispatcher(context)
        dispatcher.start()
        if settings.queue.workers > 0 or settings.engine.served_models:
            from vace_server.worker.supervisor import WorkerSupervisor

            # With VACE_MODELS: workers per served model (the entries' `workers`, default
            # VACE_WORKERS); a plan of none starts no supervisor thread's children.
            context.supervisor = WorkerSupervisor(settings, context.store, settings.queue.workers)
            context.supervisor.start()
        try:
            yield
        finally:
            if context.supervisor:
                context.supervisor.stop()
            maintenance.stop()
            dispatcher.stop()

    # /docs and /redoc are routes_docs' (local assets, no CDN); the document is built from the
    # contract's tables (openapi_document), not from the routes' `Request` signatures.
    app = FastAPI(title="vace-server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = context
    app.state.uploads = routes_uploads.build_upload_service(
        settings, UploadStore.from_settings(settings, context.store.engine)
    )
    install_error_handlers(app)
    # Added last = runs first: the request id wraps everything, the body cap included.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.http.max_request_bytes,
        idle_seconds=settings.http.request_body_timeout_seconds,
        exempt=(routes_uploads.RECEIVE_ROUTE,),
    )
    app.add_middleware(RequestContextMiddleware, on_response=context.metrics.count_response)

    routers = (routes_create, routes_tasks, routes_outputs, routes_health, routes_uploads)
    for module in (*routers, routes_playground, routes_docs):
        app.include_router(module.router)
    install_openapi(app, context.served.names())
    return app
