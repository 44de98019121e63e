"""Heartbeat against the real store on a fake clock: it renews the lease, notices a cancel
request and a lost claim, and rides out a database that fails for a while."""

from __future__ import annotations

import logging
from typing import cast

import pytest

from tests.support.clock import FakeClock
from tests.support.fake_workers import wait_until
from tests.tasks.test_store import _create
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.heartbeat import Heartbeat

# Seconds: the beat runs on a real thread, so the waits are short.
FAST: dict[str, float] = {"interval": 0.05, "cancel_poll": 0.01}


def _claim(store: TaskStore) -> Claim:
    _create(store)
    claim = store.claim("w-1")
    assert claim is not None
    return claim


def _lease(store: TaskStore, claim: Claim) -> int | None:
    task = store.get(claim.task.id)
    assert task is not None
    return task.lease_until_ms


def test_the_lease_is_renewed_while_the_work_goes_on(store: TaskStore, clock: FakeClock) -> None:
    claim = _claim(store)
    first = _lease(store, claim)
    clock.advance(5_000)  # half the lease: without a beat it would run out in 5 s
    with Heartbeat(store, claim, **FAST) as beat:
        wait_until("a renewed lease", lambda: _lease(store, claim) == clock() + store.lease_ms)
        assert not beat.canceled.is_set()
    assert first is not None and (_lease(store, claim) or 0) > first
    assert not beat._thread.is_alive()  # the context's exit stops it


def test_a_cancel_request_sets_canceled(store: TaskStore) -> None:
    claim = _claim(store)
    with Heartbeat(store, claim, **FAST) as beat:
        assert not beat.canceled.wait(0.1)
        store.request_cancel(claim.task.id, account="acct")
        assert beat.canceled.wait(5)


def test_a_lost_claim_sets_canceled(store: TaskStore, clock: FakeClock) -> None:
    """The lease ran out (a frozen worker) and the task went to another worker."""
    claim = _claim(store)
    with Heartbeat(store, claim, interval=60.0, cancel_poll=0.01) as beat:
        clock.advance(store.lease_ms + 1)
        assert store.requeue_expired_leases() == 1
        assert store.claim("w-2") is not None
        assert beat.canceled.wait(5)


class _FlakyStore:
    """The store with `failures` reads that raise first (the database restarting)."""

    def __init__(self, store: TaskStore, failures: int) -> None:
        self.store = store
        self.failures = failures
        self.beats = 0

    def cancel_requested(self, claim: Claim) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        return self.store.cancel_requested(claim)

    def heartbeat(self, claim: Claim) -> bool:
        self.beats += 1
        return self.store.heartbeat(claim)


def test_an_outage_is_logged_once_and_the_beat_resumes(
    store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    claim = _claim(store)
    flaky = _FlakyStore(store, failures=5)
    with (
        caplog.at_level(logging.INFO, logger="vace_server.worker.heartbeat"),
        Heartbeat(cast(TaskStore, flaky), claim, interval=60.0, cancel_poll=0.01) as beat,
    ):
        wait_until("the beat after the outage", lambda: flaky.beats >= 1)
        assert not beat.canceled.is_set()
    failed = [r for r in caplog.records if "failed; the task goes on" in r.getMessage()]
    assert len(failed) == 1  # once per outage, not once per failed try
    assert any("resumed" in r.getMessage() for r in caplog.records)
    # The first pass after the outage renews the lease at once, not a full interval later.
    assert flaky.beats >= 1


class _LostBetweenReads(_FlakyStore):
    """The claim is lost between the cancel read and the lease write (a race with recovery)."""

    def heartbeat(self, claim: Claim) -> bool:
        self.beats += 1
        return False


def test_a_refused_renewal_sets_canceled(
    store: TaskStore, caplog: pytest.LogCaptureFixture
) -> None:
    claim = _claim(store)
    lost = _LostBetweenReads(store, failures=0)
    with (
        caplog.at_level(logging.WARNING, logger="vace_server.worker.heartbeat"),
        Heartbeat(cast(TaskStore, lost), claim, **FAST) as beat,
    ):
        assert beat.canceled.wait(5)
    assert lost.beats == 1  # it stops beating once the claim is gone
    assert f"lost the claim on task {claim.task.id}" in caplog.text
