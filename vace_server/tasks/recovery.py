"""The store's recovery transitions: dead workers, expired leases, overdue and expired tasks.
A mixin of `TaskStore` (kept apart only for size); the same atomic-UPDATE rules apply."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.sql import ColumnElement

from vace_server.errors import InternalError
from vace_server.tasks.models import tasks, webhooks
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.wakeup import notify_work


class RecoveryMixin:
    engine: Engine
    _now: Callable[[], int]

    def _expiry(self, ended_ms: int) -> int:
        raise NotImplementedError

    def wake_local(self) -> None:
        raise NotImplementedError

    def release_worker(self, worker_id: str) -> int:
        """A worker died: its RUNNING tasks are requeued, or FAILED when out of attempts.

        Returns the number of tasks moved."""
        return self._recover(tasks.c.worker_id == worker_id)

    def release_stopped_worker(self, worker_id: str) -> int:
        """A worker was stopped by a shutdown (killed after its grace period): its RUNNING
        tasks go back to the queue without counting the interrupted attempt (CANCELED when a
        cancel was requested). Returns the number of tasks moved."""
        return self._recover(tasks.c.worker_id == worker_id, refund=True)

    def requeue_expired_leases(self) -> int:
        """RUNNING tasks whose lease ran out are requeued (or FAILED when out of attempts)."""
        return self._recover(tasks.c.lease_until_ms < self._now())

    def _recover(self, which: ColumnElement[bool], *, refund: bool = False) -> int:
        now = self._now()
        running = and_(tasks.c.status == TaskStatus.RUNNING.value, which)
        canceled = update(tasks).where(running, tasks.c.cancel_requested.is_(True))
        canceled = canceled.values(
            status=TaskStatus.CANCELED.value,
            ended_ms=now,
            expires_ms=self._expiry(now),
            worker_id=None,
            lease_until_ms=None,
            progress=None,
        )
        exhausted = update(tasks).where(running, tasks.c.attempts >= tasks.c.max_attempts)
        exhausted = exhausted.values(
            status=TaskStatus.FAILED.value,
            error_code=InternalError.code,
            error_message=InternalError.default_message,
            ended_ms=now,
            expires_ms=self._expiry(now),
            worker_id=None,
            lease_until_ms=None,
            progress=None,
        )
        retry = update(tasks).where(running, tasks.c.attempts < tasks.c.max_attempts)
        retry = retry.values(
            status=TaskStatus.PENDING.value, worker_id=None, lease_until_ms=None, progress=None
        )
        if refund:  # the attempt that was cut short does not count: every task is requeued
            retry = update(tasks).where(running, tasks.c.cancel_requested.is_(False))
            retry = retry.values(
                status=TaskStatus.PENDING.value,
                attempts=tasks.c.attempts - 1,
                worker_id=None,
                lease_until_ms=None,
                progress=None,
            )
        with self.engine.begin() as conn:
            moved = conn.execute(canceled).rowcount
            if not refund:
                moved += conn.execute(exhausted).rowcount
            requeued = conn.execute(retry).rowcount
            if requeued:
                notify_work(conn)  # wake an idle worker for the requeued task(s)
        if requeued:
            self.wake_local()
        return int(moved + requeued)

    def fail_overdue(self, max_age_ms: int, *, code: str, message: str) -> int:
        """Unfinished tasks submitted more than `max_age_ms` ago end FAILED (`code`)."""
        now = self._now()
        stmt = (
            update(tasks)
            .where(
                tasks.c.status.in_([TaskStatus.PENDING.value, TaskStatus.RUNNING.value]),
                tasks.c.created_ms < now - max_age_ms,
            )
            .values(
                status=TaskStatus.FAILED.value,
                error_code=code,
                error_message=message,
                ended_ms=now,
                expires_ms=self._expiry(now),
                worker_id=None,
                lease_until_ms=None,
                progress=None,
            )
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def purge_expired(self) -> list[str]:
        """Deletes tasks past retention. Returns their output keys (for the storage to delete)."""
        expired = and_(tasks.c.expires_ms.is_not(None), tasks.c.expires_ms <= self._now())
        with self.engine.begin() as conn:
            keys = conn.execute(select(tasks.c.output_key).where(expired)).scalars().all()
            gone = select(tasks.c.id).where(expired).scalar_subquery()
            conn.execute(delete(webhooks).where(webhooks.c.task_id.in_(gone)))
            conn.execute(delete(tasks).where(expired))
        return [k for k in keys if k]
