"""Worker groups on Ray: `vace-server ray-workers --gpus-per-task N`.

Each group is one placement group of N GPUs on one node (`group_placement`: a single bundle
of N GPUs, STRICT_PACK) and one actor scheduled into it. The actor is the group's launcher:
it runs `worker.group.GroupWorkers` on the GPUs Ray gave it (Ray sets CUDA_VISIBLE_DEVICES),
so the N rank processes, the rank-0 leader, the restart of a broken group and the release of
its task are the same code as `vace-server worker --gpus-per-task N`. A group lives on one
node because its ranks meet on loopback (rank 0's rendezvous store) and NCCL is fastest
inside a node. The ranks read the actor's settings from a private file (`--settings-file`),
since the actor's settings arrived as its constructor argument, not as environment.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from vace_server.settings import from_worker_payload, scrub_worker_environment, worker_payload
from vace_server.worker.ray_actors import Placement, current_node_id

__all__ = ["VaceGroupActor", "group_placement", "placement_group_name"]


def group_placement(placement: Placement) -> tuple[list[dict[str, float]], str]:
    """The placement group one worker group reserves: (bundles, strategy). One bundle of
    `gpus_per_task` GPUs (and as many times `cpus_per_worker` CPUs, one rank process each),
    so Ray finds the N GPUs on one node or waits."""
    n = placement.gpus_per_task
    if n < 2:
        raise ValueError(f"a worker group needs at least 2 GPUs, not {n}")
    bundle = {"GPU": float(n), "CPU": float(placement.cpus_per_worker * n)}
    return [bundle], "STRICT_PACK"


def placement_group_name(actor_name: str) -> str:
    """The detached placement group of actor `actor_name` (found again on a second start)."""
    return f"{actor_name}-gpus"


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return [g for g in visible.split(",") if g.strip()]


class VaceGroupActor:
    """The actor body (wrapped by `ray.remote` in `ray_actors.start_workers`): the launcher
    of one group, on a background thread. Plain Python, no Ray import."""

    def __init__(self, payload: str, name: str, per_task: int) -> None:
        from vace_server.logging_setup import configure_logging
        from vace_server.worker.group import GroupWorkers

        settings = from_worker_payload(payload).replace(gpus_per_task=per_task)
        scrub_worker_environment(os.environ)
        configure_logging(settings.logging.log_level, settings.logging.log_format)
        self.name = name
        self.started = time.time()
        self.settings = settings
        # Secrets in clear, readable by this user only; removed when the actor stops.
        self._dir = Path(tempfile.mkdtemp(prefix="vace-group-"))
        path = self._dir / "settings.json"
        path.touch(mode=0o600)
        path.write_text(worker_payload(settings))
        gpus = _visible_gpus()
        if gpus and len(gpus) != per_task:
            raise RuntimeError(f"Ray gave GPUs {gpus}, the group needs {per_task}")
        self.launcher = GroupWorkers(settings, [gpus], per_task, {}, settings_file=path)
        self._thread = threading.Thread(target=self._run, name="vace-group-launcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        code = self.launcher.run(signals=False)
        if code != 0:
            # A fatal start-up error (schema missing): die so that Ray reports it and, with
            # restarts left, tries again later, as it does for a plain worker actor.
            os._exit(code)

    def ready(self) -> dict[str, Any]:
        """Who and where this group is. The ranks load the model after this answers; the
        group's rank 0 registers (and counts in /ready) once they have."""
        slot = self.launcher.pool.slots[0]
        deadline = time.monotonic() + 10.0
        while not slot.worker_id and time.monotonic() < deadline:  # the pool's first start
            time.sleep(0.05)
        return {
            "name": self.name,
            "worker_id": slot.worker_id,
            "model": self.settings.engine.model,
            "device": self.settings.engine.device,
            "gpus_per_task": self.launcher.per_task,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "node_id": current_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "running": self._thread.is_alive(),
            "started": self.started,
        }

    def stop(self, timeout: float | None = None) -> bool:
        """Stops the group after its task (rank 0 requeues it past the stop grace). Returns
        True when the launcher ended within `timeout` (None: as long as it takes)."""
        self.launcher.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        for child in self._dir.iterdir():
            child.unlink()
        self._dir.rmdir()
        return True
