"""Every test here runs the model-backed code paths on one torch thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread: None) -> None:
    """See tests/conftest.py `one_torch_thread`."""
