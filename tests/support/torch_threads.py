"""One torch thread for a block: the tiny model is fastest that way, and with several the
OpenMP workers spin for seconds whenever another process competes for the two cores
(measured: 0.05 s -> 5 s). torch is imported only when the block runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_torch_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
