"""One worker's parts, built once and run by any launcher: the embedded child process
(`serve`), `vace-server worker`, and the Ray actors of `vace-server ray-workers`.

`WorkerRuntime.setup()` checks the database schema, loads the model and annotators, opens the
task store and the output storage, and starts the registry beat; `run(stop)` runs the worker
loop until `stop` is set; `shutdown(stop)` sets it and gives the task in hand
`stop_grace_seconds` before it is interrupted and requeued; `close()` stops beating and
releases the database (pool and any listener connection). A model that cannot be loaded is
recorded in the worker registry, so every API replica can say why tasks wait.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from vace_server.settings import Settings
from vace_server.tasks.spec import Control
from vace_server.worker.events import Ready

if TYPE_CHECKING:
    from vace_server.engine.loader import LoadedModel
    from vace_server.tasks.store import TaskStore
    from vace_server.tasks.workers import RegistryBeat
    from vace_server.worker.loop import WorkerLoop

log = logging.getLogger(__name__)


def available_controls(described: dict[str, Any] | None) -> list[str]:
    """The `control_condition` values whose annotator `AnnotatorSet.describe()` reports loaded
    (names only: the reasons, which name folders, stay in the worker's own /health entry)."""
    described = described or {}
    return [c.value for c in Control if described.get(c.value, {}).get("available") == "true"]


class WorkerStartupError(RuntimeError):
    """The worker cannot start for a reason its operator must fix (schema, database)."""


def check_schema(engine: Engine) -> None:
    """Raises WorkerStartupError unless the database schema is at this code's latest revision.

    A schema newer than this code knows (a later release migrated it) is only logged."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from vace_server.tasks import db

    script = ScriptDirectory.from_config(db.alembic_config(""))  # only the scripts
    heads = set(script.get_heads())
    url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        raise WorkerStartupError(f"cannot reach the database {url}: {exc}") from exc
    if not current:
        raise WorkerStartupError(
            f"the database {url} has no vace-server schema. Create it with "
            "`vace-server db upgrade` (or start an API replica, which migrates on start, or "
            "pass `vace-server worker --migrate`)."
        )
    if current == heads:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if current <= known:
        raise WorkerStartupError(
            f"the database {url} schema is at revision {', '.join(sorted(current))}, this "
            f"worker needs {', '.join(sorted(heads))}: run `vace-server db upgrade`."
        )
    log.warning(
        "database schema revision %s is newer than this worker knows (%s); carrying on",
        ", ".join(sorted(current)),
        ", ".join(sorted(heads)),
    )


class WorkerRuntime:
    """A worker's model, annotators, store, storage and registry beat, owned together."""

    def __init__(
        self,
        settings: Settings,
        worker_id: str,
        *,
        migrate: bool = False,
        info: dict[str, Any] | None = None,
    ) -> None:
        try:
            # A worker serves one model: its entry of VACE_MODELS over the deployment's
            # engine settings (the same settings without a registry).
            self.settings = settings.for_served_model()
        except ValueError as exc:
            raise WorkerStartupError(str(exc)) from None
        self.worker_id = worker_id
        self.migrate = migrate
        self.extra_info = dict(info or {})
        self.model: LoadedModel | None = None
        self.annotators_info: dict[str, Any] | None = None
        self.store: TaskStore | None = None
        self.loop: WorkerLoop | None = None
        self._registry: RegistryBeat | None = None
        self._closed = False
        self._interrupt_timer: threading.Timer | None = None

    def setup(self) -> WorkerRuntime:
        """Builds every part. Returns self.

        Raises: WorkerStartupError (schema missing or outdated, database unreachable),
        ModelLoadError / AnnotatorLoadError. Side effects: schema upgrade with `migrate`, one
        row in the `workers` registry (beaten every heartbeat_seconds until close())."""
        from vace_server.runtime import open_store

        settings = self.settings
        # The database first: a missing schema is reported in a second, not after the model.
        self.store = store = open_store(settings, migrate=self.migrate)
        try:
            check_schema(store.engine)
        except BaseException:
            self.close()
            raise
        try:
            # Heavy imports happen here, in the worker, never in the API process.
            from vace_server.annotators.registry import load_annotators
            from vace_server.engine.loader import load_model
            from vace_server.engine.prompt_rewrite import build_rewriter
            from vace_server.media.images import MediaFetcher
            from vace_server.runtime import open_storage
            from vace_server.tasks.uploads import UploadStore
            from vace_server.tasks.workers import RegistryBeat, WorkerRegistry
            from vace_server.worker.loop import WorkerLoop

            model = load_model(settings)
            annotators = load_annotators(settings)
            self.model = model
            self.annotators_info = annotators.describe()
            self.loop = WorkerLoop(
                settings=settings,
                store=store,
                storage=open_storage(settings, signs=False),
                model=model,
                media=MediaFetcher(
                    settings, uploads=UploadStore.from_settings(settings, store.engine)
                ),
                annotators=annotators,
                worker_id=self.worker_id,
                rewriter=build_rewriter(settings),
            )
            self._registry = RegistryBeat(
                WorkerRegistry(store.engine),
                self.worker_id,
                {
                    "model": model.name,
                    "device": str(model.device),
                    # which controls this worker can annotate (the playground marks the rest)
                    "controls": available_controls(self.annotators_info),
                    **self._served_info(),
                    **self.extra_info,
                },
                settings.queue.heartbeat_seconds,
            )
            self._registry.start()
            self._registry.registry.clear_failure(settings.engine.model)
        except BaseException as exc:
            if isinstance(exc, Exception):
                self._record_load_failure(exc)
            self.close()
            raise
        log.info("worker %s ready (model %s on %s)", self.worker_id, model.name, model.device)
        return self

    def _served_info(self) -> dict[str, str]:
        """The served model's name for the registry row, with VACE_MODELS only (per-model
        /ready and /metrics count by it); nothing without a registry, as before it."""
        served = self.settings.engine.served_model
        return {"served_model": served} if served else {}

    def ready_event(self) -> Ready:
        """What the launcher reports once the worker is ready (the /health worker entry)."""
        model = self.model
        return Ready(
            worker_id=self.worker_id,
            model=model.name if model else None,
            model_warning=model.warning if model else None,
            device=str(model.device) if model else None,
            annotators=self.annotators_info,
        )

    def run(self, stop: threading.Event) -> None:
        """Runs the worker loop until `stop` is set (see `shutdown` for the task in hand)."""
        if self.loop is None:
            raise RuntimeError("WorkerRuntime.run() before setup()")
        self.loop.run_forever(stop.is_set)

    def shutdown(self, stop: threading.Event, grace: float | None = None) -> None:
        """Sets `stop` (no new task is claimed). The task in hand may go on for `grace`
        seconds (default: settings.queue.stop_grace_seconds); then it stops at its next checkpoint
        and goes back to the queue without using up an attempt. Idempotent."""
        stop.set()
        loop = self.loop
        if loop is None or self._interrupt_timer is not None:
            return
        wait = self.settings.queue.stop_grace_seconds if grace is None else max(0.0, grace)
        self._interrupt_timer = threading.Timer(wait, loop.interrupted.set)
        self._interrupt_timer.daemon = True
        self._interrupt_timer.start()

    def _record_load_failure(self, exc: Exception) -> None:
        """Best effort: the registry keeps why this host cannot run its model."""
        from vace_server.tasks.workers import WorkerRegistry

        if self.store is None:
            return
        try:
            WorkerRegistry(self.store.engine).record_failure(
                self.settings.engine.model,
                str(exc),
                served_model=self.settings.engine.served_model or None,
            )
        except Exception as err:
            log.warning("could not record the load failure in the worker registry: %s", err)

    def close(self) -> None:
        """Leaves the registry and releases the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._interrupt_timer is not None:
            self._interrupt_timer.cancel()
        if self._registry is not None:
            try:
                self._registry.stop()
            except Exception:
                log.exception("worker %s could not leave the registry", self.worker_id)
        if self.store is not None:
            self.store.close()
