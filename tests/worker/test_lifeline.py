"""A worker dies with its parent: the kernel's parent-death signal and the portable watcher,
each on its own, end a child whose parent was killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.processes import process_gone
from tests.support.waiting import wait_until

# The parent starts a child and waits. The child arms one mechanism and only then prints
# "armed <its pid>" (on the stdout it shares with the parent): the test kills the parent
# once the mechanism is in place, however long the child took to start.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
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
print("armed", os.getpid(), flush=True)
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
    word, pid = parent.stdout.readline().split()
    assert word == "armed"
    child = int(pid)
    try:
        assert not process_gone(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_until(lambda: process_gone(child), 30, every=0.1, what="the orphaned child to end")
        assert process_gone(child)
    finally:
        if not process_gone(child):
            os.kill(child, signal.SIGKILL)
