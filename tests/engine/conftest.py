from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model is fastest on one thread, and with several the OpenMP workers spin for
    seconds whenever another process competes for the cores (measured: 0.05 s -> 5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
