"""A worker that owns N GPUs and runs each task across all of them (`--gpus-per-task N`).

One group is N rank processes (engine/parallel.py): rank 0 is an ordinary worker (it claims,
preprocesses, reports progress, encodes and stores); ranks 1..N-1 are followers that hold the
same model and run the same denoising call. For each task rank 0 hands the model inputs to
the followers, then every rank runs the pipeline; after every step rank 0 broadcasts whether to
go on, so a cancel (or a shutdown's interrupt) stops every rank after the same step.

Failure rule: the group is consistent only between tasks and at step boundaries. Any other
failure once the followers are involved (an exception inside the pipeline on rank 0, any
failure on a follower, a dead rank) may leave a peer inside a collective, so the group is
discarded: rank 0 fails the task (or the launcher releases it: a dead rank ends the attempt
and the task is retried) and `GroupWorkers`, which watches every rank's process, kills the
rest and starts the group again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vace_server.engine.loader import LoadedModel
from vace_server.engine.parallel import (
    GroupAddress,
    GroupChannel,
    GroupClosed,
    check_shardable,
    close_group,
    init_group,
    rank_device,
    shard_model,
)
from vace_server.engine.part_timer import PartRecorder
from vace_server.engine.runner import StepCallback, free_memory, generate
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.settings import Settings, scrub_worker_environment
from vace_server.worker.standalone import EXIT_CRASHED, EXIT_OK, EXIT_STARTUP, PerGpuWorkers
from vace_server.worker.task_model import model_for_task

if TYPE_CHECKING:
    from vace_server.worker.core import Slot
    from vace_server.worker.runtime import WorkerRuntime

__all__ = ["GroupRun", "GroupWorkers", "Leader", "follow", "run_rank", "split_groups"]

log = logging.getLogger(__name__)

# A follower that exits after rank 0 (a clean close) is given this long before it is killed.
FOLLOWER_EXIT_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class GroupRun:
    """One denoising call as rank 0 hands it to the followers."""

    inputs: VaceInputs
    prompt: str
    negative_prompt: str
    seed: int
    profile: ModelProfile
    steps: int
    guidance_scale: float
    flow_shift: float


class _Stopped(Exception):
    """A follower's run stopped at rank 0's stop flag."""


class Leader:
    """Rank 0's model call (`TaskPipeline.denoiser`): the same call on every rank. Rank 0's
    CPU steps (prepare, deliver, the look-ahead) stay the single-GPU worker's."""

    def __init__(self, channel: GroupChannel, on_broken: Callable[[], None]) -> None:
        self.channel = channel
        # Called when the group can no longer be trusted (a peer may sit in a collective).
        self.on_broken = on_broken
        self.broken = False

    def denoise(
        self,
        model: LoadedModel,
        inputs: VaceInputs,
        *,
        prompt: str,
        negative_prompt: str,
        seed: int,
        on_step: StepCallback | None = None,
        on_part: PartRecorder | None = None,
    ) -> np.ndarray:
        """`engine.runner.generate` across the group (`TaskPipeline.denoiser`). Raises what
        `generate` or `on_step` raises; anything but a stop at a step boundary also marks the
        group broken."""
        # A refused input is this task's failure alone: checked before any other rank runs.
        inputs.validate()
        check_shardable(inputs, self.channel.size)
        stopped = False

        def synced(done: int, total: int) -> None:
            nonlocal stopped
            try:
                if on_step is not None:
                    on_step(done, total)  # the cancel / interrupt checkpoint
            except BaseException:
                self.channel.step(stop=True)  # a failure here leaves `stopped` False: broken
                stopped = True
                raise
            self.channel.step(stop=False)

        try:
            self.channel.announce(
                GroupRun(
                    inputs=inputs,
                    prompt=prompt,
                    negative_prompt=negative_prompt,
                    seed=seed,
                    profile=model.profile,
                    steps=model.num_inference_steps,
                    guidance_scale=model.guidance_scale,
                    flow_shift=model.flow_shift,
                )
            )
            return generate(
                model,
                inputs,
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
                on_step=synced,
                on_part=on_part,
            )
        except BaseException:
            if not stopped:
                self.broken = True
                self.on_broken()
            raise

    def close(self) -> None:
        """Tells the followers to exit (best effort: they also exit when rank 0 is gone)."""
        try:
            self.channel.announce(None)
        except Exception as exc:
            log.warning("could not close the group: %s", exc)


def follow(channel: GroupChannel, model: LoadedModel) -> int:
    """A follower's loop: runs every task rank 0 hands over until the group closes.
    Returns: how many runs it took part in. Raises whatever a run raises but a stop."""
    runs = 0
    while True:
        try:
            run: GroupRun = channel.receive()
        except GroupClosed as exc:
            log.info("follower rank %d: %s", channel.rank, exc)
            return runs
        runs += 1
        task_model = model_for_task(  # with engine None: only applies the shift to the pipe
            dataclasses.replace(
                model,
                profile=run.profile,
                num_inference_steps=run.steps,
                guidance_scale=run.guidance_scale,
                flow_shift=run.flow_shift,
            ),
            None,
        )

        def on_step(done: int, total: int) -> None:
            if channel.step():
                raise _Stopped()

        try:
            # The frames are rank 0's to deliver; a follower's copy is dropped.
            generate(
                task_model,
                run.inputs,
                prompt=run.prompt,
                negative_prompt=run.negative_prompt,
                seed=run.seed,
                on_step=on_step,
            )
        except _Stopped:
            free_memory(task_model)


def run_rank(
    settings: Settings,
    address: GroupAddress,
    *,
    worker_id: str | None,
    parent_pid: int | None,
) -> int:
    """One rank's process of a `--gpus-per-task` group. Returns its exit code."""
    if parent_pid is not None:
        from vace_server.worker.lifeline import die_with_parent

        die_with_parent(parent_pid)
    scrub_worker_environment(os.environ)
    device = rank_device(settings.engine.device, address.rank)
    settings = settings.replace(device=device)  # the model loads onto this rank's own GPU
    if not device.startswith("cuda"):
        # A CPU group's N ranks share the host's cores: each its share, not torch's default
        # of all of them (N times oversubscribed, and every collective waits on the slowest).
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // address.size))
    mode = settings.engine.context_parallel
    channel = init_group(address, device)
    try:
        if address.rank == 0:
            return _run_leader(settings, channel, worker_id, address)
        # A follower: a shutdown reaches it as rank 0's close, never as its own signal.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        from vace_server.engine.loader import load_model

        model = load_model(settings)
        shard_model(model, mode, address.size)
        follow(channel, model)
        return EXIT_OK
    except Exception:
        log.exception("rank %d of the group crashed", address.rank)
        return EXIT_CRASHED
    finally:
        close_group()


def _run_leader(
    settings: Settings, channel: GroupChannel, worker_id: str | None, address: GroupAddress
) -> int:
    from vace_server.worker.child import run_worker
    from vace_server.worker.core import new_worker_id
    from vace_server.worker.pipeline import TaskPipeline
    from vace_server.worker.runtime import WorkerStartupError

    holder: dict[str, Leader] = {}

    def configure(runtime: WorkerRuntime) -> None:
        assert runtime.model is not None and runtime.loop is not None
        shard_model(runtime.model, settings.engine.context_parallel, address.size)
        pipeline = runtime.loop.pipeline
        if not isinstance(pipeline, TaskPipeline):
            raise TypeError(f"a group's rank 0 needs the task pipeline, not {pipeline!r}")
        holder["leader"] = leader = Leader(channel, on_broken=_abandon)
        pipeline.denoiser = leader.denoise

    info = {"launcher": "worker", "gpus_per_task": address.size, "parallel": "context"}
    worker_id = worker_id or new_worker_id("group", str(os.getpid()))
    try:
        run_worker(settings, worker_id, info=info, configure=configure)
    except WorkerStartupError as exc:
        print(f"vace-server worker: {exc}", file=sys.stderr, flush=True)
        return EXIT_STARTUP
    finally:
        if "leader" in holder:
            holder["leader"].close()
    return EXIT_OK


def _abandon() -> None:
    """Rank 0 leaves at once, the task still RUNNING under its worker id: the launcher, which
    sees the exit, releases the task (the attempt counts, it is retried while attempts are
    left) and restarts the whole group. Storing a failure here would end the task for what
    is most often a dead peer, and carrying on would pair the next task's collectives with a
    peer still inside this one's."""
    log.error("the group failed mid-run (a rank died, or the run crashed): restarting it")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_CRASHED)


def split_groups(gpus: list[str], per_task: int) -> list[list[str]]:
    """["0".."7"], 4 → [["0".."3"], ["4".."7"]]. Raises ValueError unless N divides them."""
    if per_task < 2:
        raise ValueError(f"--gpus-per-task {per_task}: a group needs at least 2 devices")
    if len(gpus) % per_task:
        raise ValueError(
            f"--gpus {','.join(gpus)}: {len(gpus)} devices do not split into groups of {per_task}"
        )
    return [gpus[i : i + per_task] for i in range(0, len(gpus), per_task)]


def _free_port() -> int:
    # Bound then released for rank 0's store; another process taking it in between makes the
    # group fail to start, and the pool starts it again.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _RankGroup:
    """The N processes of one group as the pool's `ChildHandle`: it has exited once any rank
    has, and then the others are killed (a group missing a rank cannot run)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs
        self._code: int | None = None
        self._first_exit: float | None = None

    @property
    def pid(self) -> int | None:
        return self.procs[0].pid

    def exit_code(self) -> int | None:
        if self._code is not None:
            return self._code
        codes = [p.poll() for p in self.procs]
        if all(c is None for c in codes):
            return None
        now = time.monotonic()
        self._first_exit = self._first_exit or now
        # Rank 0 closed the group (a stop): the followers are leaving on their own.
        leaving = codes[0] == EXIT_OK and any(c is None for c in codes)
        if leaving and now - self._first_exit < FOLLOWER_EXIT_SECONDS:
            return None
        self.kill()
        for proc in self.procs:
            proc.wait()
        # Rank 0's code says what happened (0 stopped, 2 startup error, else a crash); a
        # follower gone first is a crash of the group, whatever its own code.
        self._code = codes[0] if codes[0] is not None else EXIT_CRASHED
        return self._code

    def terminate(self) -> None:
        self.procs[0].send_signal(signal.SIGTERM)  # rank 0 stops, then closes the group

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)


class GroupWorkers(PerGpuWorkers):
    """`vace-server worker --gpus 0,1,2,3 --gpus-per-task N`: one group of N rank processes
    per N devices (all N visible to each rank), each group a slot of the worker pool."""

    def __init__(
        self,
        settings: Settings,
        groups: list[list[str]],
        per_task: int,
        env: dict[str, str],
        settings_file: Path | None = None,
    ) -> None:
        """`groups`: each group's device ids ([[]]: one group on the devices the environment
        shows, or the CPU). `settings_file`: the ranks read their settings from this
        `worker_payload` file instead of the environment (a Ray actor's, ray_groups.py)."""
        super().__init__(settings, [",".join(g) for g in groups], env)
        self.per_task = per_task
        self.settings_file = settings_file
        for slot, devices in zip(self.pool.slots, self.gpus, strict=True):
            tag = "cpu" if not devices else "gpu" + "+".join(devices.split(","))[:24]
            slot.role = (f"{tag}x{self.per_task}", str(os.getpid()))
            slot.where = f" on {devices or 'CPU'} ({self.per_task} ranks)"

    def _spawn(self, slot: Slot) -> Any:
        devices = self.gpus[slot.index]
        port = _free_port()
        procs = []
        for rank in range(self.per_task):
            cmd = [sys.executable, "-m", "vace_server", "worker"]
            cmd += ["--gpus-per-task", str(self.per_task), "--group-rank", str(rank)]
            cmd += ["--group-port", str(port), "--parent-pid", str(os.getpid())]
            if devices:
                cmd += ["--gpus", devices]
            if rank == 0:
                cmd += ["--worker-id", slot.worker_id]
            if self.settings_file is not None:
                cmd += ["--settings-file", str(self.settings_file)]
            env = {**os.environ, **self.env}
            if devices:
                env["CUDA_VISIBLE_DEVICES"] = devices
            scrub_worker_environment(env)
            procs.append(subprocess.Popen(cmd, env=env, process_group=0))
        log.info(
            "started worker group %s%s (pids %s)",
            slot.worker_id,
            slot.where,
            ",".join(str(p.pid) for p in procs),
        )
        return _RankGroup(procs)
