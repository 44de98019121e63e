"""Entry point of a worker process: load the model once, then run the loop until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from vace_server.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, worker_id: str, report: Any | None = None) -> None:
    """Loads the model and runs the worker loop in this process until SIGTERM/SIGINT.

    `report` (a multiprocessing queue) receives one dict describing the loaded model."""
    # Heavy imports happen here, in the worker, never in the API process.
    from vace_server.annotators.registry import load_annotators
    from vace_server.engine.loader import load_model
    from vace_server.engine.prompt_rewrite import build_rewriter
    from vace_server.media.images import MediaFetcher
    from vace_server.runtime import open_storage, open_store
    from vace_server.storage.uploads import UploadStore
    from vace_server.tasks.workers import RegistryBeat, WorkerRegistry
    from vace_server.worker.loop import WorkerLoop

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("worker %s: signal %d, stopping after the current task", worker_id, signum)
        stop.set()
        # A second signal while busy means "now": restore the default and let it kill us.
        signal.signal(signum, signal.SIG_DFL)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    model = load_model(settings)
    annotators = load_annotators(settings)
    if report is not None:
        report.put(
            {
                "worker_id": worker_id,
                "event": "ready",
                "model": model.name,
                "model_warning": model.warning,
                "device": str(model.device),
                "annotators": annotators.describe(),
            }
        )
    store = open_store(settings)
    storage = open_storage(settings)
    loop = WorkerLoop(
        settings=settings,
        store=store,
        storage=storage,
        model=model,
        media=MediaFetcher(settings, uploads=UploadStore.from_settings(settings, store.engine)),
        annotators=annotators,
        worker_id=worker_id,
        rewriter=build_rewriter(settings),
    )
    registry = RegistryBeat(
        WorkerRegistry(store.engine),
        worker_id,
        {"model": model.name, "device": str(model.device)},
        settings.heartbeat_seconds,
    )
    registry.start()
    log.info("worker %s ready (model %s on %s)", worker_id, model.name, model.device)
    try:
        loop.run_forever(stop.is_set)
    finally:
        registry.stop()
        store.engine.dispose()


def child_main(settings_json: str, worker_id: str, report: Any) -> None:
    """multiprocessing target (spawned): settings travel as JSON."""
    from vace_server.logging_setup import configure_logging

    settings = Settings.model_validate_json(settings_json)
    configure_logging()
    try:
        run_worker(settings, worker_id, report)
    except Exception as exc:
        # Typically the model could not be loaded: say why in /health, then exit so the
        # supervisor retries with backoff.
        log.exception("worker %s could not run", worker_id)
        report.put({"worker_id": worker_id, "event": "error", "error": str(exc)})
        raise SystemExit(1) from exc
