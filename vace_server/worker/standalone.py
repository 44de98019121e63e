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
import subprocess
import sys
import time
from typing import Any

from vace_server.settings import Settings, scrub_worker_environment
from vace_server.worker.core import Releases, Slot, WorkerPool, new_worker_id

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_STARTUP = 2  # the operator must fix something (schema, database, bad --gpus)
PASS_SECONDS = 0.2


def parse_gpus(text: str | None) -> list[str]:
    """ "0" → ["0"], "0,1" → ["0", "1"], "GPU-…" UUIDs too; None / "" → []."""
    if not text:
        return []
    gpus = [part.strip() for part in text.split(",")]
    if any(not g or any(c.isspace() for c in g) for g in gpus) or len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus {text!r}: expected device ids like 0 or 0,1, each once")
    return gpus


def worker_role(gpu: str | None = None) -> tuple[str, str]:
    """The middle of this launcher's worker ids (see `core.new_worker_id`): the device and
    the pid of the process that chose the id."""
    tag = f"gpu{gpu[:12]}" if gpu is not None else "worker"
    return (tag, str(os.getpid()))


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

    scrub_worker_environment(os.environ)  # settings are read: the API's secrets can go
    if gpu is not None:
        if "torch" in sys.modules:  # too late for CUDA_VISIBLE_DEVICES to take effect
            log.warning("torch was imported before --gpus could select device %s", gpu)
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        info = {"launcher": "worker", "gpu": gpu}
        worker_id = worker_id or new_worker_id(*worker_role(gpu))
        run_worker(settings, worker_id, migrate=migrate, info=info)
    except WorkerStartupError as exc:
        print(f"vace-server worker: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP
    except Exception:
        log.exception("worker crashed")
        return EXIT_CRASHED
    return EXIT_OK


class _Subprocess:
    """A `vace-server worker --gpus <g>` child as the pool's `ChildHandle`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)


class PerGpuWorkers:
    """One `vace-server worker --gpus <g>` child per device; see the module docstring."""

    def __init__(self, settings: Settings, gpus: list[str], env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env  # VACE_* for the flags the parent was given
        self.pool = WorkerPool(
            [Slot(i, role=worker_role(g), where=f" on GPU {g}") for i, g in enumerate(gpus)],
            spawn=self._spawn,
            releases=self._open_store,
            stable_seconds=settings.queue.restart_stable_seconds,
            fatal_exit_codes=frozenset({EXIT_STARTUP}),
        )
        self.gpus = gpus
        self._signals = 0  # SIGTERM/SIGINT received (acted on by the main loop)
        self._killed = False
        self._store: Any = None

    def run(self, *, signals: bool = True) -> int:
        """Runs the pool until it is done. Returns the exit code. `signals`: SIGTERM/SIGINT
        stop it (the main thread only); without, `request_stop` does (a Ray actor's thread)."""
        if signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.pool.start()
        while not self.pool.done:
            time.sleep(PASS_SECONDS)
            # The handler only counts: the pool is changed here, never mid-pass.
            if self._signals and not self.pool.stopping:
                self.pool.stop()
            # A fatal exit counts as the first stop: one signal after it kills, as two would.
            if self._signals + (self.pool.fatal_exit is not None) > 1 and not self._killed:
                self._killed = True
                self.pool.kill_remaining()
            self.pool.poll()
        if self._store is not None:
            self._store.close()
        return EXIT_STARTUP if self.pool.fatal_exit is not None else EXIT_OK

    def _spawn(self, slot: Slot) -> _Subprocess:
        gpu = self.gpus[slot.index]
        cmd = [sys.executable, "-m", "vace_server", "worker", "--gpus", gpu]
        cmd += ["--worker-id", slot.worker_id, "--parent-pid", str(os.getpid())]
        env = {**os.environ, **self.env, "CUDA_VISIBLE_DEVICES": gpu}
        scrub_worker_environment(env)  # a worker never needs the API's secrets
        # Its own process group: a terminal's Ctrl-C reaches only this process, which passes
        # one SIGTERM on (two signals would mean "stop now" to the child).
        proc = subprocess.Popen(cmd, env=env, process_group=0)
        log.info("started worker %s on GPU %s (pid %d)", slot.worker_id, gpu, proc.pid)
        return _Subprocess(proc)

    def _open_store(self) -> Releases:
        """The store, opened at the first death (a parent that never sees one never needs it)."""
        if self._store is None:
            from vace_server.runtime import open_store

            self._store = open_store(self.settings)
        store: Releases = self._store
        return store

    def request_stop(self) -> None:
        """What a signal does, from another thread: the first stops the workers after their
        task, the second kills them."""
        self._signals += 1

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("signal %d: workers stop after their current task", signum)
        else:
            log.info("signal %d again: killing the workers now", signum)
