"""Fixtures of the store tests."""

from __future__ import annotations

import random
import uuid

import pytest

from vace_server.tasks import store as store_module


class ReplayableIds:
    """Stands in for the `uuid` module inside the store: random-looking task ids (so ties in
    FIFO order fall either way) that repeat when hypothesis replays an example."""

    def __init__(self) -> None:
        self.rng = random.Random(0)

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)


@pytest.fixture
def replayable_ids(monkeypatch: pytest.MonkeyPatch) -> ReplayableIds:
    """The store's task ids from a seeded generator (for hypothesis, which replays examples)."""
    ids = ReplayableIds()
    monkeypatch.setattr(store_module, "uuid", ids)
    return ids
