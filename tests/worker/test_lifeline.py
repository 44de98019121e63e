"""A worker dies with its parent: the kernel's parent-death signal and the portable watcher,
each on its own, end a child whose parent was killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.processes import process_gone

# The parent starts a child that arms one mechanism, prints the child's pid, then waits.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(600)
"""
CHILD = """
import os, sys, threading, time
from vace_server.worker import lifeline
parent = os.getppid()
if sys.argv[1] == "kernel":
    assert lifeline.set_parent_death_signal()
else:
    threading.Thread(target=lifeline._watch, args=(parent, threading.Event(), 0.1)).start()
time.sleep(600)
"""


@pytest.mark.parametrize("mechanism", ["kernel", "watcher"])
def test_the_child_dies_when_its_parent_is_killed(mechanism: str) -> None:
    if mechanism == "kernel" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, mechanism],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        time.sleep(1.0)  # let the child arm its mechanism
        assert not process_gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while not process_gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert process_gone(child)
    finally:
        if not process_gone(child):
            os.kill(child, signal.SIGKILL)
