"""Context parallelism on two gloo (CPU) ranks with the tiny model: the 2-rank video equals the
1-rank one, a stop at rank 0 ends both ranks' run after the same step, and ring refuses a
backend without the log-sum-exp. Ulysses runs on gloo; ring cannot run on a CPU at all (see
engine/parallel.py), so its test is the refusal."""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from tests.support.live_server import free_port
from vace_server.engine.parallel import (
    GroupAddress,
    check_shardable,
    enable_context_parallel,
    init_group,
    sequence_tokens,
)
from vace_server.engine.runner import generate
from vace_server.model_inputs import VaceInputs

# 3 x 1 patches a latent frame, 5 latent frames + the reference's: 18 tokens.
W, H, N = 48, 16, 17
# Float32 on one machine: the sharded run differs only in how the attention's sums are split.
TOLERANCE = 1e-5


def _inputs() -> VaceInputs:
    frames = [Image.new("RGB", (W, H), (20 * (i % 10), 90, 200)) for i in range(N)]
    mask = Image.new("L", (W, H), 0)
    mask.paste(255, (8, 4, 24, 12))
    return VaceInputs(
        width=W, height=H, num_frames=N, output_size=(W, H), output_seconds=1.0,
        video=frames, mask=[mask] * N, reference_images=[Image.new("RGB", (20, 30), "red")],
    )  # fmt: skip


def _model(steps: int) -> Any:
    from vace_server.engine.loader import load_model
    from vace_server.settings import Settings

    flat: dict[str, Any] = {"num_frames": N, "generation_area": W * H, "num_inference_steps": steps}
    return load_model(Settings(model="tiny", device="cpu", **flat))


def _run(model: Any, on_step: Any = None) -> np.ndarray:
    return generate(
        model, _inputs(), prompt="a red cat", negative_prompt="negative", seed=7, on_step=on_step
    )


class _Cancel(Exception):
    pass


def _rank(rank: int, port: int, results: Any) -> None:
    """One rank: a 1-rank reference (rank 0), the same run sharded, then a run rank 0 stops
    after step 2 of 4, through the worker group's own leader / follower code."""
    from vace_server.worker.group import Leader, follow

    torch.set_num_threads(1)
    channel = init_group(GroupAddress("127.0.0.1", port, rank, 2), "cpu")
    model = _model(steps=4)
    tokens: list[int] = []  # the tokens the first block's self-attention sees, per forward
    model.pipe.transformer.blocks[0].attn1.register_forward_pre_hook(
        lambda _m, args: tokens.append(int(args[0].shape[1]))
    )
    reference = _run(model) if rank == 0 else None
    enable_context_parallel(model.pipe.transformer, "ulysses", 2)
    if rank == 0:
        sharded = _run(model)
        leader = Leader(channel, on_broken=lambda: None)

        def cancel_at_2(done: int, total: int) -> None:
            if done == 2:
                raise _Cancel()

        with pytest.raises(_Cancel):
            leader.denoise(
                model, _inputs(), prompt="a red cat", negative_prompt="negative", seed=7,
                on_step=cancel_at_2,
            )  # fmt: skip
        leader.close()
        results.put(("rank0", reference, sharded, tokens, leader.broken))
    else:
        _run(model)  # rank 0's plain sharded run
        runs = follow(channel, model)
        results.put(("rank1", runs, tokens))
    from vace_server.engine.parallel import close_group

    close_group()


@pytest.mark.slow
def test_two_gloo_ranks_match_one_and_stop_together() -> None:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, results)) for r in range(2)]
    for proc in procs:
        proc.start()
    try:
        got = {}
        for _ in procs:
            item = results.get(timeout=120)
            got[item[0]] = item[1:]
    except queue.Empty:
        pytest.fail("a rank did not report")
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    reference, sharded, tokens0, broken = got["rank0"]
    runs, tokens1 = got["rank1"]
    assert np.abs(sharded - reference).max() <= TOLERANCE
    assert sharded.shape == reference.shape == (N, H, W, 3)
    # Two forwards a step (guidance). The reference saw the whole sequence, every sharded
    # forward half of it on each rank; the stopped run ended after step 2 of 4 on both.
    full = tokens0[0]
    assert full > 0 and tokens0[:8] == [full] * 8
    assert full == sequence_tokens(_inputs()) == 18
    assert tokens0[8:] == tokens1 == [full // 2] * (2 * 4 + 2 * 2)
    assert runs == 1 and not broken
    assert all(proc.exitcode == 0 for proc in procs)


def test_ring_refuses_a_backend_without_lse(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    from vace_server.engine.tiny import build_tiny_pipeline

    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    transformer = build_tiny_pipeline().transformer
    with pytest.raises(ValueError, match="ring needs VACE_ATTENTION_BACKEND"):
        enable_context_parallel(transformer, "ring", 2)
    with pytest.raises(ValueError, match="group size 2"):
        enable_context_parallel(transformer, "ulysses", 4)


def test_gloo_groups_refuse_a_token_count_they_cannot_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dataclasses

    import torch.distributed as dist

    odd = dataclasses.replace(_inputs(), num_frames=13)  # (4 + 1) x 3 = 15 tokens
    assert sequence_tokens(odd) == 15
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    check_shardable(_inputs(), 2)
    with pytest.raises(ValueError, match="15 tokens do not split over 2 gloo ranks"):
        check_shardable(odd, 2)
    monkeypatch.setattr(dist, "get_backend", lambda: "nccl")  # "anything" mode takes it
    check_shardable(odd, 2)


def test_each_rank_runs_on_its_own_gpu_or_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from vace_server.engine.parallel import rank_device

    if not torch.cuda.is_available():
        assert [rank_device(d, 1) for d in ("auto", "cpu")] == ["cpu", "cpu"]
    # What the ranks of a 4-GPU group pick, whatever GPU index VACE_DEVICE named.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [rank_device("cuda:0", r) for r in range(4)] == [f"cuda:{r}" for r in range(4)]
    assert rank_device("auto", 2) == "cuda:2"
    assert rank_device("cpu", 3) == "cpu"
