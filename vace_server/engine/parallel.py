"""One task across N devices: diffusers' context parallelism on `torch.distributed` ranks.

A group of N rank processes loads the same model; `enable_context_parallel` shards the VACE
transformer's token sequence across them (`ContextParallelConfig` with `ulysses_degree` or
`ring_degree` = N, applied by `transformer.enable_parallelism`). Every rank then runs the same
pipeline call: the hooks split the sequence at the first blocks and gather it after
`proj_out`, so every rank holds the full noise prediction and the scheduler keeps identical
latents everywhere. The control plane is ours: `GroupChannel` announces a task (through the
rendezvous store, so idle followers wait without a collective timing out), hands its payload
over a gloo group, and broadcasts rank 0's go/stop flag after every denoising step.

What runs where (diffusers 0.42.1, torch 2.13):
* Ulysses: needs `all_to_all_single`, which gloo implements for CPU tensors, with the native
  SDPA backend: it runs (and is tested) on CPU. Its "anything" mode (a token count the group
  size does not divide) gathers unequal shards, which gloo's all-gather refuses: NCCL groups
  use it, gloo groups need a divisible count (`check_shardable`).
* Ring: the all-gather runs on gloo, but ring attention merges partial results by their
  log-sum-exp, and only the CUDA/NPU kernels (flash, flash-3, sage, `_native_cudnn`,
  `_native_flash`, `_native_npu`) return it; native SDPA refuses `return_lse`. So ring needs
  a GPU and `VACE_ATTENTION_BACKEND` set to one of those.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import torch
import torch.distributed as dist
from diffusers import ContextParallelConfig
from diffusers.models._modeling_parallel import ContextParallelInput, ContextParallelOutput

from vace_server.model_inputs import VaceInputs
from vace_server.settings.speedups import RING_BACKENDS

from .loader import LoadedModel

__all__ = [
    "COLLECTIVE_TIMEOUT",
    "RING_BACKENDS",
    "VACE_CP_PLAN",
    "GroupAddress",
    "GroupChannel",
    "GroupClosed",
    "ParallelMode",
    "check_shardable",
    "close_group",
    "enable_context_parallel",
    "init_group",
    "rank_device",
    "sequence_tokens",
    "shard_model",
    "uneven_shards",
]

log = logging.getLogger(__name__)

ParallelMode = Literal["ulysses", "ring"]

# A collective (a step's all-to-all, the payload hand-over) waiting longer than this means a
# peer is gone or stuck; the launcher restarts the group long before in the usual case (it
# watches every rank's process), this only bounds the rare stuck-but-alive peer.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
# How long a follower's wait for the next task blocks before it looks again (also how soon it
# notices that rank 0, which hosts the store, has gone).
IDLE_WAIT = timedelta(seconds=2)

# WanVACETransformer3DModel ships no `_cp_plan` (WanTransformer3DModel does); this one follows
# the VACE forward: the rotary tables and both token streams are cut along the sequence where
# they enter the blocks, the control branch's hints stay cut the same way (each is added to the
# main stream's own shard), and the output is gathered after `proj_out`.
VACE_CP_PLAN: dict[str, Any] = {
    "rope": {
        0: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
        1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
    },
    # Only the first VACE block reads `hidden_states` (its proj_in adds them to the control
    # stream); the later ones take the control stream it returned, already cut.
    "vace_blocks.0": {
        "hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False),
        "control_hidden_states": ContextParallelInput(
            split_dim=1, expected_dims=3, split_output=False
        ),
    },
    "blocks.0": {
        "hidden_states": ContextParallelInput(split_dim=1, expected_dims=3, split_output=False),
    },
    "proj_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
}


@dataclass(frozen=True)
class GroupAddress:
    """Where a group meets: rank 0 hosts the store at host:port."""

    host: str
    port: int
    rank: int
    size: int


class GroupClosed(Exception):
    """Rank 0 closed the group (shutdown), or its store is gone (rank 0 died)."""


class GroupChannel:
    """Rank 0 → followers: task announcements, payloads and per-step go/stop flags."""

    def __init__(self, store: dist.Store, control: Any, rank: int, size: int) -> None:
        self.store = store  # a PrefixStore over the rendezvous store
        self.control = control  # a gloo process group: CPU collectives whatever the devices
        self.rank = rank
        self.size = size
        self._seq = 0

    def announce(self, payload: Any | None) -> None:
        """Rank 0: hands `payload` to every follower (None closes the group)."""
        self._seq += 1
        self.store.set(f"task/{self._seq}", "run" if payload is not None else "close")
        if self._seq > 2:  # every follower read it before the previous task's steps ran
            self.store.delete_key(f"task/{self._seq - 2}")
        if payload is not None:
            self._broadcast(payload)

    def receive(self) -> Any:
        """A follower: waits for the next announcement. Returns its payload.
        Raises: GroupClosed (rank 0 closed the group, or is gone)."""
        self._seq += 1
        key = f"task/{self._seq}"
        while True:
            try:
                self.store.wait([key], IDLE_WAIT)
                break
            except dist.DistStoreError as exc:
                if "timeout" not in str(exc).lower():
                    raise GroupClosed(f"rank 0 is gone: {exc}") from exc
            except (RuntimeError, ConnectionError) as exc:
                raise GroupClosed(f"rank 0 is gone: {exc}") from exc
        if self.store.get(key) != b"run":
            raise GroupClosed("rank 0 closed the group")
        return self._broadcast(None)

    def step(self, stop: bool = False) -> bool:
        """After each denoising step, on every rank: rank 0's `stop` reaches all. Returns it."""
        flag = torch.tensor([1 if stop else 0], dtype=torch.int32)
        dist.broadcast(flag, src=0, group=self.control)
        return bool(flag.item())

    def _broadcast(self, payload: Any) -> Any:
        # Pickled by hand into one uint8 tensor (length first): broadcast_object_list would
        # do the same in two collectives; this keeps the framing explicit.
        if self.rank == 0:
            data = torch.frombuffer(bytearray(pickle.dumps(payload)), dtype=torch.uint8)
            size = torch.tensor([data.numel()], dtype=torch.int64)
        else:
            size = torch.zeros(1, dtype=torch.int64)
        dist.broadcast(size, src=0, group=self.control)
        if self.rank != 0:
            data = torch.empty(int(size.item()), dtype=torch.uint8)
        dist.broadcast(data, src=0, group=self.control)
        if self.rank == 0:
            return payload
        return pickle.loads(data.numpy().tobytes())  # our own rank 0's bytes


def rank_device(device: str, rank: int) -> str:
    """The device rank `rank` runs on for VACE_DEVICE `device`: on CUDA its own GPU of those
    the group sees (`cuda:<rank>`, whatever GPU index the setting named), else the CPU."""
    device = device.strip().lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda:{rank % torch.cuda.device_count()}"
    return device


def init_group(address: GroupAddress, device: str) -> GroupChannel:
    """Joins the group: NCCL for CUDA devices (each rank on `cuda:<rank>`), else gloo.
    Blocks until every rank has joined. Returns the control channel."""
    store = dist.TCPStore(
        address.host,
        address.port,
        address.size,
        is_master=address.rank == 0,
        timeout=COLLECTIVE_TIMEOUT,
    )
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(address.rank % torch.cuda.device_count())
    dist.init_process_group(
        backend="nccl" if cuda else "gloo",
        store=dist.PrefixStore("pg", store),
        rank=address.rank,
        world_size=address.size,
        timeout=COLLECTIVE_TIMEOUT,
    )
    control = dist.new_group(backend="gloo", timeout=COLLECTIVE_TIMEOUT)
    log.info("rank %d of %d joined (%s)", address.rank, address.size, dist.get_backend())
    return GroupChannel(dist.PrefixStore("ctl", store), control, address.rank, address.size)


def close_group() -> None:
    """Leaves the process group (idempotent)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def enable_context_parallel(transformer: Any, mode: ParallelMode, degree: int) -> None:
    """Shards `transformer` over the `degree` ranks of the initialised group.

    Raises: ValueError for ring without an LSE-returning backend (see the module docstring),
    a degree other than the group's size, or a head count Ulysses cannot divide."""
    world = dist.get_world_size()
    if degree != world:
        raise ValueError(f"context parallel degree {degree} != group size {world}")
    if mode == "ring":
        backend = _attention_backend(transformer)
        if backend not in RING_BACKENDS:
            raise ValueError(
                f"VACE_CONTEXT_PARALLEL=ring needs VACE_ATTENTION_BACKEND set to one of "
                f"{', '.join(sorted(RING_BACKENDS))} (a GPU kernel returning the log-sum-exp); "
                f"the transformer uses {backend!r}. Use ulysses, or set the backend."
            )
        config = ContextParallelConfig(ring_degree=degree, ring_anything=uneven_shards())
    else:
        config = ContextParallelConfig(ulysses_degree=degree, ulysses_anything=uneven_shards())
    with _cpu_device_count():
        transformer.enable_parallelism(config=config, cp_plan=VACE_CP_PLAN)


def shard_model(model: LoadedModel, mode: ParallelMode, degree: int) -> None:
    """`enable_context_parallel` on every denoiser of the loaded pipeline (Wan2.2-A14B's
    two experts each get the plan: both run inside one denoising call)."""
    from .speedups import transformers_of

    for transformer in transformers_of(model.pipe):
        enable_context_parallel(transformer, mode, degree)


def uneven_shards() -> bool:
    """Whether the group may cut a sequence its size does not divide (diffusers' "anything"
    modes): their output gather is an all-gather of unequal shards, which NCCL does and gloo
    refuses ("ProcessGroupGloo::allgather: invalid tensor size"). On gloo the token count
    must divide; `check_shardable` says so before a run starts."""
    return dist.get_backend() != "gloo"


def sequence_tokens(inputs: VaceInputs) -> int:
    """The transformer's token count for `inputs`: latent frames (4x temporal, one per
    reference image) x (H/16) x (W/16) (8x VAE, 2x2 patches)."""
    frames = (inputs.num_frames - 1) // 4 + 1 + len(inputs.reference_images or [])
    return frames * (inputs.height // 16) * (inputs.width // 16)


def check_shardable(inputs: VaceInputs, degree: int) -> None:
    """Raises ValueError when the group cannot cut this run's sequence (gloo only)."""
    tokens = sequence_tokens(inputs)
    if not uneven_shards() and tokens % degree:
        raise ValueError(
            f"{tokens} tokens do not split over {degree} gloo ranks (CPU groups need a size "
            f"and frame count whose token count {degree} divides; NCCL groups take any)"
        )


def _attention_backend(transformer: Any) -> str:
    """The backend the first attention processor uses (diffusers' active one if unset)."""
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    for module in transformer.modules():
        backend = getattr(getattr(module, "processor", None), "_attention_backend", None)
        if backend is not None:
            return str(getattr(backend, "value", backend))
    active, _ = _AttentionBackendRegistry.get_active_backend()
    return str(active.value)


@contextlib.contextmanager
def _cpu_device_count() -> Iterator[None]:
    """diffusers 0.42.1 picks each rank's device as `rank % torch.accelerator.device_count()`,
    which divides by zero on a host without an accelerator. There the device is the CPU
    whatever the count, so for the gloo (CPU) group only, the count reads 1 during the call."""
    if torch.accelerator.device_count() > 0:
        yield
        return
    real = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.accelerator.device_count = real
