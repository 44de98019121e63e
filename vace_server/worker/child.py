"""Entry point of a worker process: load the model once, then run the loop until told to stop."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vace_server.settings import Settings, from_worker_payload, scrub_worker_environment
from vace_server.worker.events import EventSink, Failed

if TYPE_CHECKING:
    from vace_server.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings,
    worker_id: str,
    report: EventSink | None = None,
    *,
    migrate: bool = False,
    info: dict[str, Any] | None = None,
    second_signal_kills: bool = True,
    configure: Callable[[WorkerRuntime], None] | None = None,
) -> None:
    """Loads the model and runs the worker loop in this process until SIGTERM/SIGINT: the task
    in hand may go on for `settings.queue.stop_grace_seconds`, then it stops at its next checkpoint
    and goes back to the queue (its attempt not counted).

    With `second_signal_kills`, a second signal kills at once (an operator at a terminal);
    without, repeats are ignored (a launcher that sends one itself and kills after the grace).
    `report` (a multiprocessing queue) receives a `Ready` event once the model is loaded;
    `info` is added to the worker's registry entry; `configure(runtime)` runs once the runtime
    is set up, before the first claim (a group's rank 0 swaps in its model call there).
    Raises: WorkerStartupError (schema missing/outdated), model or annotator load errors."""
    from vace_server.worker.runtime import WorkerRuntime

    stop = threading.Event()
    holder: dict[str, WorkerRuntime] = {}

    def _on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            if second_signal_kills:
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)
            return
        grace = settings.queue.stop_grace_seconds
        log.info(
            "worker %s: signal %d, stopping (a task in hand has %gs to finish, else it is "
            "requeued)",
            worker_id,
            signum,
            grace,
        )
        runtime = holder.get("runtime")
        if runtime is not None:
            runtime.shutdown(stop)
        else:
            stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    runtime = WorkerRuntime(settings, worker_id, migrate=migrate, info=info)
    holder["runtime"] = runtime
    runtime.setup()
    try:
        if configure is not None:  # a multi-GPU group's rank 0 shards the model (worker/group.py)
            configure(runtime)
        if report is not None:
            report.put(runtime.ready_event())
        runtime.run(stop)
        log.info("worker %s stopped", worker_id)
    finally:
        runtime.close()


def child_main(payload: str, worker_id: str, report: EventSink, parent_pid: int) -> None:
    """multiprocessing target (spawned): settings travel as `settings.worker_payload`.
    The child dies with its parent (see `lifeline`)."""
    from vace_server.logging_setup import configure_logging
    from vace_server.worker.lifeline import die_with_parent

    die_with_parent(parent_pid)
    settings = from_worker_payload(payload)
    scrub_worker_environment(os.environ)  # inherited from `serve`: the API's secrets
    configure_logging(settings.logging.log_level, settings.logging.log_format)
    try:
        run_worker(settings, worker_id, report, second_signal_kills=False)
    except Exception as exc:
        # Typically the model could not be loaded: say why in /health (and, through the
        # worker registry, in the query of waiting tasks), then exit so the supervisor
        # retries with backoff.
        from vace_server.engine.loader import ModelLoadError

        if isinstance(exc, ModelLoadError):  # an expected, explained failure: no traceback
            log.error("worker %s could not load the model: %s", worker_id, exc)
        else:
            log.exception("worker %s could not run", worker_id)
        report.put(Failed(worker_id, str(exc)))
        raise SystemExit(1) from exc
