"""The state machine test is not vacuous: each deliberately broken store below fails it, on a
short sequence of the machine's own rules and checks, while the real store passes the same
sequence.

The sequences are scripted rather than searched for: hypothesis mixes constants taken from
every module loaded in the process into what it draws, so even a derandomized search walks
other sequences depending on which tests ran before it (a full run once missed the canceled
task that succeeds within 300 examples, while the file alone found it in seconds)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_
from sqlalchemy.sql import ColumnElement

from tests.tasks.test_store_state_machine import LEASE_MS, RETENTION_MS, StoreMachine
from vace_server.tasks import db
from vace_server.tasks.models import tasks
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import Claim, TaskStore


class StaleClaimsWin(TaskStore):
    """Broken on purpose: ownership ignores the attempt, so a worker that lost a task and then
    claimed it again holds two live claims (and the stale one may finish it)."""

    @staticmethod
    def _owned(claim: Claim) -> ColumnElement[bool]:
        return and_(
            tasks.c.id == claim.task.id,
            tasks.c.worker_id == claim.worker_id,
            tasks.c.status == TaskStatus.RUNNING.value,
        )


class CancelIgnored(TaskStore):
    """Broken on purpose: a task succeeds although its client asked to cancel it."""

    def succeed(self, claim: Claim, **values: Any) -> bool:
        now = self._now()
        values["effective"] = json.dumps(values["effective"])
        status = TaskStatus.SUCCEEDED
        return self._finish(
            claim, status=status, ended_ms=now, expires_ms=now + RETENTION_MS, **values
        )


class Script:
    """Stands in for a rule's `data` argument: each labelled draw gets its scripted answer."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers

    def draw(self, strategy: object, label: str | None = None) -> Any:
        assert label is not None, "every draw of the machine's rules is labelled"
        return self.answers[label]


Steps = Callable[[StoreMachine], None]


def cancel_then_succeed(machine: StoreMachine) -> None:
    """A client cancels a running task, then its worker finishes it "succeed"."""
    machine.queue(["alice"])
    machine.holds()
    machine.claim("w1")
    machine.holds()
    claim = machine.handed_out[-1]
    machine.cancel(Script(which=TaskStatus.RUNNING, task=claim.task.id), own=True)  # type: ignore[arg-type]
    machine.holds()
    machine.finish(Script(live=True, claim=claim), how="succeed")  # type: ignore[arg-type]
    machine.holds()


def stale_claim_finishes(machine: StoreMachine) -> None:
    """A worker's lease runs out, the task goes back and the same worker claims it again; the
    first (stale) claim then tries to finish it."""
    machine.queue(["alice"])
    machine.claim("w1")
    stale = machine.handed_out[-1]
    machine.time_passes(LEASE_MS + 1, "leases")
    machine.holds()
    machine.claim("w1")
    machine.holds()
    assert machine.handed_out[-1].attempt == stale.attempt + 1
    machine.finish(Script(live=False, claim=stale), how="succeed")  # type: ignore[arg-type]
    machine.holds()


CASES = [(StaleClaimsWin, stale_claim_finishes), (CancelIgnored, cancel_then_succeed)]


@pytest.mark.usefixtures("replayable_ids")
@pytest.mark.parametrize(("broken", "steps"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_the_machine_catches_a_broken_store(
    tmp_path: Path, broken: type[TaskStore], steps: Steps
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'tasks.db'}")
    db.upgrade(engine)

    class Machine(StoreMachine):
        store_class = broken

    try:
        steps(StoreMachine(engine, tmp_path / "run"))  # the real store: every check holds
        with pytest.raises(AssertionError):
            steps(Machine(engine, tmp_path / "run"))
    finally:
        engine.dispose()
