"""A real, local, CPU-only Ray cluster for the tests: `ray start --head` on loopback.

Nothing reaches the network: usage stats are off, the dashboard is off, every port is a
free loopback-chosen one. Teardown ends only this cluster's processes (the session `ray start`
began, and anything naming its temp folder), never other Ray processes on the machine, which
`ray stop --force` would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.support.live_server import free_port

RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_PROMPT_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
}


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _ray_cli() -> str:
    cli = Path(sys.executable).with_name("ray")
    return str(cli) if cli.exists() else "ray"


def _cluster_pids(session: int, marker: str) -> list[int]:
    """This cluster's processes: those in the session `ray start` began (Ray's own daemons
    and the workers the raylet spawns), or whose command line names its temp folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        sid = int(stat.rsplit(")", 1)[1].split()[3])  # fields after "(comm)": state ppid pgrp sid
        if sid == session or marker in cmdline:
            found.append(int(entry.name))
    return found


@contextmanager
def local_ray_cluster(num_cpus: int = 4, num_gpus: int = 0) -> Iterator[str]:
    """Starts a head node; yields its address ("127.0.0.1:<port>"); tears it down.
    `num_gpus` is a resource count only (Ray hands out the ids and sets each actor's
    CUDA_VISIBLE_DEVICES; nothing checks for a device)."""
    temp = Path(tempfile.mkdtemp(prefix="vray-", dir="/tmp"))  # short: socket paths
    port = free_port()
    env = {**os.environ, **RAY_ENV}
    cmd = [
        _ray_cli(),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--num-cpus={num_cpus}",
        f"--num-gpus={num_gpus}",
        "--object-store-memory=200000000",
        "--include-dashboard=false",
        f"--dashboard-port={free_port()}",
        "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]
    log = (temp / "ray-start.log").open("wb")
    starter = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    pgid = starter.pid
    try:
        code = starter.wait(timeout=120)
        log.close()
        if code != 0:
            raise RuntimeError(f"ray start failed:\n{(temp / 'ray-start.log').read_text()[-4000:]}")
        yield f"127.0.0.1:{port}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            for pid in _cluster_pids(pgid, str(temp)):
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(1.0)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """Session fixture: the address of a local Ray head (skips when Ray is not installed)."""
    if not ray_available():
        pytest.skip("ray is not installed (pip install -e '.[dev]')")
    # Two GPUs by count, for a worker group's placement group (test_ray_workers.py); the
    # plain actors reserve none.
    with local_ray_cluster(num_gpus=2) as address:
        yield address
