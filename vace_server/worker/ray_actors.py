"""Workers as Ray actors: `vace-server ray-workers`.

Each actor is one worker (the same `WorkerRuntime` and loop as the embedded child and
`vace-server worker`) placed by Ray on a node with `gpus_per_worker` free GPUs; Ray sets its
CUDA_VISIBLE_DEVICES. The constructor loads the model once and starts the loop on a background
thread, so an actor that Ray restarts after its process died goes back to work by itself.
Each incarnation takes a fresh worker id: the claim the dead one held is recovered by lease
expiry (the API replicas' maintenance), exactly like a plain worker that died.

The actors are named (`<prefix>-<i>`) and detached: the command that creates them exits once
they are ready, and they live until `vace-server ray-workers --stop` (or the cluster) ends
them. Only this module and that command import Ray; the API process never does, and
vace-server installs without it (`pip install 'vace-server[ray]'` adds it).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from vace_server.settings import (
    Settings,
    from_worker_payload,
    scrub_worker_environment,
    worker_payload,
)
from vace_server.worker.core import new_worker_id

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "vace"
DEFAULT_PREFIX = "vace-worker"
# Environment the driver forwards to its actors (settings themselves travel as JSON).
FORWARDED_ENV_PREFIXES = ("VACE_LOG_", "HF_", "HUGGINGFACE_")


def incarnation_id(name: str) -> str:
    """A worker id unique to this actor process (see `core.new_worker_id`)."""
    return new_worker_id("ray", name[:32])


class VaceWorkerActor:
    """The actor body (wrapped by `ray.remote` in `actor_class`). Plain Python, no Ray import."""

    def __init__(self, payload: str, name: str) -> None:
        from vace_server.logging_setup import configure_logging
        from vace_server.worker.runtime import WorkerRuntime

        settings = from_worker_payload(payload)
        scrub_worker_environment(os.environ)  # whatever the node's `ray start` was given
        configure_logging(settings.logging.log_level, settings.logging.log_format)
        self.name = name
        self.worker_id = incarnation_id(name)
        self.started = time.time()
        info = {"launcher": "ray", "actor": name}
        self.runtime = WorkerRuntime(settings, self.worker_id, info=info).setup()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run()

    def run(self) -> bool:
        """Starts the loop thread unless it runs already. Returns True when it was started."""
        if self._thread is not None and self._thread.is_alive():
            return False
        if self._stop.is_set():
            return False  # stopped for good: the runtime is closed
        self._thread = threading.Thread(target=self._loop, name="vace-worker-loop", daemon=True)
        self._thread.start()
        return True

    def ready(self) -> dict[str, Any]:
        """Who and where this incarnation is (answered once the constructor has finished)."""
        return {
            **self.runtime.ready_event().as_dict(),
            "name": self.name,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "node_id": current_node_id(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "running": bool(self._thread and self._thread.is_alive()),
            "started": self.started,
        }

    def stop(self, timeout: float | None = None) -> bool:
        """Stops the loop and leaves the registry. The task in hand may go on for the
        settings' stop_grace_seconds (less when `timeout` is shorter); then it stops at its
        next checkpoint and goes back to the queue, its attempt not counted.

        Returns True when the loop ended within `timeout` (None: wait as long as it takes)."""
        grace = self.runtime.settings.queue.stop_grace_seconds
        if timeout is not None:
            grace = min(grace, max(0.0, timeout - 5.0))  # leave time to requeue and leave
        self.runtime.shutdown(self._stop, grace=grace)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
        self.runtime.close()
        return True

    def _loop(self) -> None:
        try:
            self.runtime.run(self._stop)
        except BaseException:
            # The loop itself broke (e.g. the database stayed away): die so that Ray restarts
            # this actor as a fresh incarnation, as a supervisor would restart a child.
            log.exception("worker %s: loop crashed; exiting for a restart", self.worker_id)
            self.runtime.close()
            os._exit(1)


def actor_class(max_restarts: int = -1, *, grouped: bool = False) -> Any:
    """`VaceWorkerActor` (`ray_groups.VaceGroupActor` when `grouped`) as a Ray actor class:
    restarted when its process dies (up to `max_restarts`, -1 = always), method calls never
    retried."""
    import ray

    body: type = VaceWorkerActor
    if grouped:
        from vace_server.worker.ray_groups import VaceGroupActor

        body = VaceGroupActor
    return ray.remote(max_restarts=max_restarts, max_task_retries=0)(body)


def current_node_id() -> str | None:
    """The Ray node this process runs on; None outside Ray (tests of the plain classes)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return None


@dataclass(frozen=True)
class Placement:
    replicas: int
    gpus_per_worker: float = 1.0
    cpus_per_worker: float = 1.0
    namespace: str = DEFAULT_NAMESPACE
    prefix: str = DEFAULT_PREFIX
    max_restarts: int = -1
    # > 1: each replica is a worker group (ray_groups.py) in a placement group of this
    # many GPUs, running each task across all of them; `gpus_per_worker` is then unused.
    gpus_per_task: int = 1


def _connect(address: str, namespace: str) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address=address,
        namespace=namespace,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )


def _actor_index(name: str, prefix: str) -> int | None:
    tail = name[len(prefix) + 1 :] if name.startswith(prefix + "-") else ""
    return int(tail) if tail.isdigit() else None


def _ours(prefix: str) -> dict[str, int]:
    import ray

    found: dict[str, int] = {}
    for name in ray.util.list_named_actors():
        index = _actor_index(name, prefix)
        if index is not None:
            found[name] = index
    return found


def _last_line(exc: BaseException) -> str:
    """The root cause Ray quotes at the end of an actor's creation error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _stop_actors(names: list[str], timeout: float) -> list[str]:
    """Graceful stop (each finishes its task, within `timeout`), then kill without restart."""
    import ray

    handles: dict[str, Any] = {}
    for name in names:
        try:
            handles[name] = ray.get_actor(name)
        except ValueError:
            continue  # gone meanwhile
    if not handles:
        return []
    pending: dict[Any, str] = {h.stop.remote(timeout): name for name, h in handles.items()}
    done, _late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout + 5)
    for ref in done:
        try:
            if not ray.get(ref):
                log.warning("actor %s still busy after %.0fs; killing it", pending[ref], timeout)
        except Exception as exc:  # dead or never placed
            log.warning("actor %s did not stop cleanly: %s", pending[ref], exc)
    for handle in handles.values():
        ray.kill(handle, no_restart=True)
    _remove_placement_groups(sorted(handles))
    return sorted(handles)


def _remove_placement_groups(names: list[str]) -> None:
    """Frees the GPUs a worker group's placement group held (none for a plain actor)."""
    import ray

    from vace_server.worker.ray_groups import placement_group_name

    for name in names:
        try:
            group = ray.util.get_placement_group(placement_group_name(name))
        except ValueError:
            continue  # a plain worker actor, or removed already
        ray.util.remove_placement_group(group)


def _group_options(name: str, placement: Placement) -> dict[str, Any]:
    """The actor options that place worker group `name` into its placement group (created
    detached, or found again when the group exists): all of the bundle's GPUs and CPUs."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from vace_server.worker.ray_groups import group_placement, placement_group_name

    bundles, strategy = group_placement(placement)
    try:
        group = ray.util.get_placement_group(placement_group_name(name))
    except ValueError:
        group = ray.util.placement_group(
            bundles, strategy=strategy, name=placement_group_name(name), lifetime="detached"
        )
    return {
        "num_gpus": bundles[0]["GPU"],
        "num_cpus": bundles[0]["CPU"],
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=0
        ),
    }


def _actor_args(placement: Placement, payload: str, name: str) -> tuple[Any, ...]:
    if placement.gpus_per_task > 1:
        return (payload, name, placement.gpus_per_task)
    return (payload, name)


def start_workers(
    address: str, settings: Settings, placement: Placement, *, ready_timeout: float = 600.0
) -> list[dict[str, Any]]:
    """Creates (or keeps) `<prefix>-0 … <prefix>-{replicas-1}`, removes higher-numbered ones,
    and waits until every actor has loaded its model. Returns each actor's `ready()` answer.

    Raises: TimeoutError when some are not ready in `ready_timeout` (not enough free GPUs/CPUs
    on the cluster, or slow model downloads: they stay and start when they can);
    RuntimeError when an actor could not start (its error, e.g. a missing database schema)."""
    import ray

    # Paths are resolved where the command runs; settings (secrets included) reach the
    # actors as their constructor argument.
    settings = settings.replace(**{"data_dir": settings.store.data_dir.resolve()})
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    _connect(address, placement.namespace)
    try:
        extra = [n for n, i in _ours(placement.prefix).items() if i >= placement.replicas]
        if extra:
            log.warning("removing surplus actors %s", ", ".join(sorted(extra)))
            _stop_actors(extra, timeout=60.0)
        grouped = placement.gpus_per_task > 1
        cls = actor_class(placement.max_restarts, grouped=grouped)
        payload = worker_payload(settings)
        handles = []
        for i in range(placement.replicas):
            name = f"{placement.prefix}-{i}"
            options: dict[str, Any] = {
                "name": name,
                "namespace": placement.namespace,
                "lifetime": "detached",
                "get_if_exists": True,
                "num_gpus": placement.gpus_per_worker,
                "num_cpus": placement.cpus_per_worker,
            }
            if grouped:
                options.update(_group_options(name, placement))
            if env:
                options["runtime_env"] = {"env_vars": env}
            args = _actor_args(placement, payload, name)
            handles.append((name, cls.options(**options).remote(*args)))
        if not handles:
            return []
        refs: dict[Any, str] = {h.ready.remote(): name for name, h in handles}
        done, late = ray.wait(list(refs), num_returns=len(refs), timeout=ready_timeout)
        answers: dict[str, dict[str, Any]] = {}
        failures: dict[str, str] = {}
        for ref in done:
            try:
                answers[refs[ref]] = ray.get(ref)
            except Exception as exc:
                failures[refs[ref]] = _last_line(exc)
        if failures:
            _stop_actors(sorted(failures), timeout=5.0)
            detail = "; ".join(f"{n}: {e}" for n, e in sorted(failures.items()))
            raise RuntimeError(f"worker actors failed to start: {detail}")
        if late:
            names = ", ".join(sorted(refs[r] for r in late))
            raise TimeoutError(
                f"actors not ready after {ready_timeout:.0f}s: {names}. Does the cluster have "
                f"{placement.gpus_per_worker:g} free GPU(s) and {placement.cpus_per_worker:g} "
                "CPU(s) for each (`ray status`)? They stay and start when resources appear."
            )
        return [answers[name] for name, _h in handles]
    finally:
        ray.shutdown()


def stop_workers(
    address: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    prefix: str = DEFAULT_PREFIX,
    timeout: float = 300.0,
) -> list[str]:
    """Stops and removes every `<prefix>-<i>` actor in `namespace`. Returns their names."""
    import ray

    _connect(address, namespace)
    try:
        return _stop_actors(sorted(_ours(prefix)), timeout)
    finally:
        ray.shutdown()


def list_workers(
    address: str, *, namespace: str = DEFAULT_NAMESPACE, prefix: str = DEFAULT_PREFIX
) -> list[dict[str, Any]]:
    """`ready()` of every live `<prefix>-<i>` actor (a few seconds at most each)."""
    import ray

    _connect(address, namespace)
    try:
        out: list[dict[str, Any]] = []
        for name in sorted(_ours(prefix), key=lambda n: _actor_index(n, prefix) or 0):
            try:
                handle: Any = ray.get_actor(name)
                out.append(ray.get(handle.ready.remote(), timeout=10))
            except Exception as exc:
                out.append({"name": name, "error": str(exc)})
        return out
    finally:
        ray.shutdown()
