"""`vace-server worker`: workers outside the API process, pointed at the shared database and
storage.

Without `--gpus` (or with one device) the worker runs in this process. With several devices
(`--gpus 0,1`) this process starts one worker process per device, each seeing only its own
(CUDA_VISIBLE_DEVICES), passes SIGTERM/SIGINT on to them, releases the task of one that dies
and restarts it with backoff; it exits when they all have. The children die with it (see
`lifeline`), even when it is killed. A worker only ever uses one device,
so one process per GPU is how a multi-GPU machine is used.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from vace_server.settings import Settings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_STARTUP = 2  # the operator must fix something (schema, database, bad --gpus)
MAX_BACKOFF_SECONDS = 30.0


def parse_gpus(text: str | None) -> list[str]:
    """ "0" → ["0"], "0,1" → ["0", "1"], "GPU-…" UUIDs too; None / "" → []."""
    if not text:
        return []
    gpus = [part.strip() for part in text.split(",")]
    if any(not g or any(c.isspace() for c in g) for g in gpus) or len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus {text!r}: expected device ids like 0 or 0,1, each once")
    return gpus


def new_worker_id(gpu: str | None = None) -> str:
    tag = f"gpu{gpu[:12]}" if gpu is not None else "worker"
    return f"{socket.gethostname()[:48]}:{tag}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_one(
    settings: Settings,
    *,
    gpu: str | None,
    migrate: bool,
    worker_id: str | None = None,
    parent_pid: int | None = None,
) -> int:
    """Runs one worker in this process until SIGTERM/SIGINT (the task in hand has
    `stop_grace_seconds`, then it is requeued). With `parent_pid` (a PerGpuWorkers child),
    the worker dies with that process.

    Returns an exit code: 0 stopped, 2 startup error (printed), 1 crashed (logged)."""
    from vace_server.worker.child import run_worker
    from vace_server.worker.runtime import WorkerStartupError

    if parent_pid is not None:
        from vace_server.worker.lifeline import die_with_parent

        die_with_parent(parent_pid)

    if gpu is not None:
        if "torch" in sys.modules:  # too late for CUDA_VISIBLE_DEVICES to take effect
            log.warning("torch was imported before --gpus could select device %s", gpu)
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        info = {"launcher": "worker", "gpu": gpu}
        run_worker(settings, worker_id or new_worker_id(gpu), migrate=migrate, info=info)
    except WorkerStartupError as exc:
        print(f"vace-server worker: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP
    except Exception:
        log.exception("worker crashed")
        return EXIT_CRASHED
    return EXIT_OK


@dataclass
class _Child:
    gpu: str
    worker_id: str = ""
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0


class PerGpuWorkers:
    """One `vace-server worker --gpus <g>` child per device; see the module docstring."""

    def __init__(self, settings: Settings, gpus: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.children = [_Child(gpu=g) for g in gpus]
        self.env = env  # VACE_* for the flags the parent was given
        self._stopping = 0
        self._signaled: set[int] = set()  # pids already sent SIGTERM
        self._store: Any = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            self._spawn(child)
        code = EXIT_OK
        while not (self._stopping and all(c.proc is None for c in self.children)):
            time.sleep(0.2)
            if self._stopping:
                self._signal_all(signal.SIGTERM)  # any child started while the signal came
            for child in self.children:
                if child.proc is None:
                    if not self._stopping and time.monotonic() >= child.next_start:
                        self._spawn(child)
                    continue
                rc = child.proc.poll()
                if rc is None:
                    continue
                child.proc = None
                if self._stopping:
                    self._release(child, stopped=True)
                    continue
                if rc == EXIT_STARTUP:
                    log.error("worker on GPU %s cannot start; stopping the others", child.gpu)
                    code = EXIT_STARTUP
                    self._stopping = max(self._stopping, 1)
                    continue
                self._on_death(child, rc)
        if self._store is not None:
            self._store.close()
        return code

    def _spawn(self, child: _Child) -> None:
        child.worker_id = new_worker_id(child.gpu)
        cmd = [sys.executable, "-m", "vace_server", "worker", "--gpus", child.gpu]
        cmd += ["--worker-id", child.worker_id, "--parent-pid", str(os.getpid())]
        env = {**os.environ, **self.env, "CUDA_VISIBLE_DEVICES": child.gpu}
        # Its own process group: a terminal's Ctrl-C reaches only this process, which passes
        # one SIGTERM on (two signals would mean "stop now" to the child).
        child.proc = subprocess.Popen(cmd, env=env, process_group=0)
        child.started = time.monotonic()
        log.info("started worker %s on GPU %s (pid %d)", child.worker_id, child.gpu, child.proc.pid)

    def _release(self, child: _Child, *, stopped: bool = False) -> int:
        """Requeues the tasks a gone child held; `stopped` (by a shutdown): the interrupted
        attempt is not counted. Returns how many moved (0 when the database is away)."""
        try:
            if self._store is None:
                from vace_server.runtime import open_store

                self._store = open_store(self.settings)
            if stopped:
                moved = int(self._store.release_stopped_worker(child.worker_id))
                if moved:
                    log.warning(
                        "worker %s stopped by the shutdown: %d task(s) back in the queue, the "
                        "interrupted attempt not counted",
                        child.worker_id,
                        moved,
                    )
                return moved
            return int(self._store.release_worker(child.worker_id))
        except Exception:
            log.exception("could not release the tasks of worker %s", child.worker_id)
            return 0

    def _on_death(self, child: _Child, rc: int) -> None:
        moved = self._release(child)
        if time.monotonic() - child.started >= self.settings.queue.restart_stable_seconds:
            child.restarts = 0
        backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2.0 ** min(child.restarts, 6))
        child.restarts += 1
        child.next_start = time.monotonic() + backoff
        log.error(
            "worker %s on GPU %s died (exit code %s); %d task(s) recovered; restart in %.1fs",
            child.worker_id,
            child.gpu,
            rc,
            moved,
            backoff,
        )

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stopping += 1
        if self._stopping == 1:
            log.info("signal %d: workers stop after their current task", signum)
            self._signal_all(signal.SIGTERM)
        else:
            log.info("signal %d again: killing the workers now", signum)
            self._signal_all(signal.SIGKILL)

    def _signal_all(self, signum: int) -> None:
        """SIGTERM goes once to each child (a second one would mean "now"); SIGKILL to all."""
        for child in self.children:
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            if signum == signal.SIGTERM:
                if proc.pid in self._signaled:
                    continue
                self._signaled.add(proc.pid)
            proc.send_signal(signum)
