"""Entry point of a worker process: load the model once, then run the loop until told to stop."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from vace_server.settings import Settings

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    worker_id: str,
    report: Any | None = None,
    *,
    migrate: bool = False,
    info: dict[str, Any] | None = None,
) -> None:
    """Loads the model and runs the worker loop in this process until SIGTERM/SIGINT: the task
    in hand is finished first; a second signal kills at once.

    `report` (a multiprocessing queue) receives one dict describing the loaded model; `info`
    is added to the worker's registry entry.
    Raises: WorkerStartupError (schema missing/outdated), model or annotator load errors."""
    from vace_server.worker.runtime import WorkerRuntime

    stop = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        log.info("worker %s: signal %d, stopping after the current task", worker_id, signum)
        stop.set()
        # A second signal while busy means "now": restore the default and let it kill us.
        signal.signal(signum, signal.SIG_DFL)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    runtime = WorkerRuntime(settings, worker_id, migrate=migrate, info=info).setup()
    try:
        if report is not None:
            report.put(runtime.describe())
        runtime.run(stop)
        log.info("worker %s stopped", worker_id)
    finally:
        runtime.close()


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
