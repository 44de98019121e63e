"""Timing the parts of one pipeline call from outside diffusers: the text encoder's forward
passes, the VAE's encode and decode calls; the caller counts the rest as denoising.

Hooks are put on for one call and taken off after it, so a pipeline is never left changed. On
CUDA each boundary synchronises the device first: kernels are asynchronous, and without it a
part would be charged to whatever waits on the device next."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

PartRecorder = Callable[[str, float], None]  # (part, seconds)


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


@contextmanager
def _module_forward(module: Any, part: str, record: PartRecorder, device: str) -> Iterator[None]:
    starts: list[float] = []

    def before(_module: Any, _args: Any) -> None:
        _sync(device)
        starts.append(time.perf_counter())

    def after(_module: Any, _args: Any, _output: Any) -> None:
        _sync(device)
        if starts:
            record(part, time.perf_counter() - starts.pop())

    handles = [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _method(owner: Any, name: str, part: str, record: PartRecorder, device: str) -> Iterator[None]:
    """Wraps `owner.name` for the `with` body with an instance attribute (removed after, so
    the class's method shows through again)."""
    inner = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        _sync(device)
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            _sync(device)
            record(part, time.perf_counter() - start)

    object.__setattr__(owner, name, timed)  # nn.Module's __setattr__ would do the same
    try:
        yield
    finally:
        if owner.__dict__.get(name) is timed:
            del owner.__dict__[name]


@contextmanager
def timed_parts(pipe: Any, device: str, record: PartRecorder | None) -> Iterator[None]:
    """Records `prompt_encode`, `vae_encode` and `vae_decode` seconds of the pipeline calls
    made in the `with` body (nothing without `record`, or for parts the pipeline lacks)."""
    with ExitStack() as stack:
        if record is not None:
            encoder = getattr(pipe, "text_encoder", None)
            if isinstance(encoder, torch.nn.Module):
                stack.enter_context(_module_forward(encoder, "prompt_encode", record, device))
            vae = getattr(pipe, "vae", None)
            for name, part in (("encode", "vae_encode"), ("decode", "vae_decode")):
                if vae is not None and callable(getattr(vae, name, None)):
                    stack.enter_context(_method(vae, name, part, record, device))
        yield
