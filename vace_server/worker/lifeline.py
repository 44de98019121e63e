"""A worker process dies with the process that started it.

Without this, a `serve` (or a multi-GPU `vace-server worker`) killed with SIGKILL leaves its
worker children running: they keep claiming tasks and holding GPU memory. On Linux the kernel
sends the child SIGKILL when its parent goes (`prctl(PR_SET_PDEATHSIG)`, which fires when the
parent *thread* that started the child ends: launchers start children from a thread that lives
until they have stopped). Everywhere, a daemon thread also watches the parent pid and kills
this process once it changes (the child was re-parented).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Asks the Linux kernel to send `signum` to this process when its parent ends. Returns
    False where that is not available (other systems, no libc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _die(parent_pid: int) -> None:
    log.error("parent process %d is gone; this worker (pid %d) exits", parent_pid, os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent_pid: int, stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        if os.getppid() != parent_pid:
            _die(parent_pid)


def die_with_parent(parent_pid: int, *, interval: float = WATCH_SECONDS) -> threading.Event:
    """Makes this process end (SIGKILL) when `parent_pid`, its parent, does. Returns an event
    that stops the watcher thread (the kernel's death signal stays set).

    Side effects: prctl on Linux; a daemon thread; kills this process at once when the parent
    is already gone."""
    set_parent_death_signal()
    if os.getppid() != parent_pid:  # it died before the death signal was set
        _die(parent_pid)
    stop = threading.Event()
    threading.Thread(
        target=_watch, args=(parent_pid, stop, interval), name="parent-watch", daemon=True
    ).start()
    return stop
