"""TaskStore: the only owner of task state transitions.

Every transition is one atomic UPDATE guarded by the state it leaves (and, for a worker, by
its claim: worker id + attempt number), so two processes can never both move a task.

Calls that are safe to repeat ride out a database restart (see `transient`); making a task
claimable wakes idle workers at once (NOTIFY on PostgreSQL, a local socket on SQLite: see
`wakeup`).
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    Update,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql import ColumnElement

from vace_server.clock import Clock, wall_clock_ms
from vace_server.tasks.models import TaskRecord, tasks, webhooks
from vace_server.tasks.recovery import RecoveryMixin
from vace_server.tasks.spec import TaskSpec
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.transient import RETRY_SECONDS, RetryingAccess
from vace_server.tasks.wakeup import LocalWaker, WorkWaiter, local_waker, notify_work, waiter_for


class CancelOutcome(enum.Enum):
    CANCELED = "canceled"  # was PENDING, now CANCELED
    REQUESTED = "requested"  # RUNNING: the worker will stop and mark it CANCELED
    REFUSED = "refused"  # finished, unknown, or another account's


@dataclass(frozen=True)
class Claim:
    """Proof of ownership handed to the worker that claimed a task."""

    task: TaskRecord
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class ListFilter:
    account: str
    start_ms: int
    end_ms: int
    task_id: str | None = None
    model_name: str | None = None
    status: TaskStatus | None = None
    api_key_id: str | None = None


# The one-task read, built once with bound parameters: building a statement costs more than
# running it on SQLite (profiled: most of a query request's time went to expression building).
_GET = select(tasks).where(
    tasks.c.id == bindparam("id"),
    or_(tasks.c.expires_ms.is_(None), tasks.c.expires_ms > bindparam("now")),
)
_GET_OWNED = _GET.where(tasks.c.account == bindparam("account"))
_INSERT_TASK = insert(tasks)  # the values travel as parameters: nothing to build per call


class TaskStore(RecoveryMixin, RetryingAccess):
    """Persistent task queue and state machine over SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_ms: int = 60_000,
        max_attempts: int = 3,
        retention_ms: int = 24 * 3_600_000,
        clock: Clock = wall_clock_ms,
        retry_seconds: float = RETRY_SECONDS,
        local_wakeups: bool = True,
    ) -> None:
        """`local_wakeups`: on a SQLite file, wake and be woken through local sockets
        (`wakeup`); off, waiting is plain polling."""
        self.engine = engine
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        self.retention_ms = retention_ms
        self.retry_seconds = retry_seconds
        self._now = clock
        self._postgres = engine.dialect.name == "postgresql"
        self._waiter: WorkWaiter | None = None
        self.local_wakeups = local_wakeups
        self._waker: LocalWaker | None = local_waker(engine) if local_wakeups else None

    # ------------------------------------------------------------------ client side
    def create(
        self,
        spec: TaskSpec,
        *,
        account: str,
        api_key_id: str,
        request_id: str,
        callback_urls: Sequence[str] = (),
    ) -> TaskRecord:
        """Inserts a PENDING task and, in the same transaction, one pending webhook per
        callback URL, and wakes idle workers. Returns the task as inserted (PENDING even when
        a worker has claimed it since): nothing runs after the commit, so once the row is
        committed this call cannot fail.

        Retried across a lost connection with the same task id: a retry first looks whether
        the earlier attempt committed, so one call never makes two tasks."""
        task_id = str(uuid.uuid4())
        values = {
            "id": task_id,
            "account": account,
            "api_key_id": api_key_id,
            "request_id": request_id,
            "model_name": spec.model_name,
            "function": spec.function.value,
            "status": TaskStatus.PENDING.value,
            "spec": spec.to_json(),
            "created_ms": self._now(),
            "attempts": 0,
            "max_attempts": self.max_attempts,
            "cancel_requested": False,
        }
        hooks = [
            {
                "id": str(uuid.uuid4()),
                "task_id": task_id,
                "url": url,
                "state": "pending",
                "attempts": 0,
                "next_attempt_ms": values["created_ms"],
            }
            for url in dict.fromkeys(callback_urls)  # each URL once
        ]

        def insert_task(attempt: int) -> None:
            with self.engine.begin() as conn:
                if (
                    attempt > 1
                    and conn.execute(select(tasks.c.id).where(tasks.c.id == task_id)).first()
                ):
                    return  # the earlier attempt committed before its connection was lost
                conn.execute(_INSERT_TASK, values)
                if hooks:
                    conn.execute(insert(webhooks), hooks)
                notify_work(conn)

        self._retry(insert_task, "create")
        self.wake_local()
        return TaskRecord.inserted(values, spec)

    def get(self, task_id: str, *, account: str | None = None) -> TaskRecord | None:
        """Returns the task unless unknown, past retention, or (when given) another account's."""
        params = {"id": task_id, "now": self._now(), "account": account}
        stmt = _GET if account is None else _GET_OWNED  # built once: the query's hot path
        row = self._read(lambda conn: conn.execute(stmt, params).first())
        return TaskRecord.from_row(row) if row else None

    def list_page(
        self, flt: ListFilter, *, page_no: int, page_size: int
    ) -> tuple[list[TaskRecord], int]:
        """Returns one page of the account's tasks (newest first) and the total count."""
        cond: list[ColumnElement[bool]] = [
            tasks.c.account == flt.account,
            tasks.c.created_ms >= flt.start_ms,
            tasks.c.created_ms <= flt.end_ms,
            self._not_expired(),
        ]
        if flt.task_id:
            cond.append(tasks.c.id == flt.task_id)
        if flt.model_name:
            cond.append(tasks.c.model_name == flt.model_name)
        if flt.status:
            cond.append(tasks.c.status == flt.status.value)
        if flt.api_key_id:
            cond.append(tasks.c.api_key_id == flt.api_key_id)
        query = select(tasks).where(*cond).order_by(tasks.c.created_ms.desc(), tasks.c.id)
        count = select(func.count()).select_from(tasks).where(*cond)
        page = query.offset((page_no - 1) * page_size).limit(page_size)
        total, rows = self._read(
            lambda conn: (conn.execute(count).scalar_one(), conn.execute(page).all())
        )
        return [TaskRecord.from_row(r) for r in rows], int(total)

    def request_cancel(self, task_id: str, *, account: str) -> CancelOutcome:
        """PENDING → CANCELED at once; RUNNING → flagged, the worker stops within one step.

        Returns what happened; REFUSED for finished, unknown or another account's tasks."""
        now = self._now()
        mine = and_(tasks.c.id == task_id, tasks.c.account == account)
        pending = (
            update(tasks)
            .where(mine, tasks.c.status == TaskStatus.PENDING.value)
            .values(status=TaskStatus.CANCELED.value, ended_ms=now, expires_ms=self._expiry(now))
        )
        running = (
            update(tasks)
            .where(mine, tasks.c.status == TaskStatus.RUNNING.value)
            .values(cancel_requested=True)
        )
        with self.engine.begin() as conn:
            if conn.execute(pending).rowcount == 1:
                return CancelOutcome.CANCELED
            if conn.execute(running).rowcount == 1:
                return CancelOutcome.REQUESTED
        return CancelOutcome.REFUSED

    def count_in_flight(self, account: str) -> int:
        """The account's PENDING + RUNNING tasks."""
        busy = [TaskStatus.PENDING.value, TaskStatus.RUNNING.value]
        query = select(func.count()).select_from(tasks)
        query = query.where(tasks.c.account == account, tasks.c.status.in_(busy))
        return int(self._read(lambda conn: conn.execute(query).scalar_one()))

    def queue_position(self, task: TaskRecord, *, models: Collection[str] | None = None) -> int:
        """1-based place of a PENDING task in the queue (claims take the oldest first); with
        `models`, in the queue of the workers that claim those model names."""
        ahead = and_(
            tasks.c.status == TaskStatus.PENDING.value,
            self._of_models(models),
            or_(
                tasks.c.created_ms < task.created_ms,
                and_(tasks.c.created_ms == task.created_ms, tasks.c.id < task.id),
            ),
        )
        query = select(func.count()).select_from(tasks).where(ahead)
        return int(self._read(lambda conn: conn.execute(query).scalar_one())) + 1

    # ------------------------------------------------------------------ worker side
    def claim(self, worker_id: str, *, models: Collection[str] | None = None) -> Claim | None:
        """Atomically takes the oldest PENDING task (of the `models` names, when given: a
        worker serves one model and claims only its tasks, oldest first) and leases it to
        `worker_id`.

        Returns the claim, or None when the queue is empty. Side effects: one UPDATE.
        (Retried across a lost connection; should the lost attempt have committed, that task
        waits out its lease and is requeued: delayed, never lost.)"""
        now = self._now()
        oldest = (
            select(tasks.c.id)
            .where(tasks.c.status == TaskStatus.PENDING.value, self._of_models(models))
            .order_by(tasks.c.created_ms, tasks.c.id)
            .limit(1)
        )
        if self._postgres:
            oldest = oldest.with_for_update(skip_locked=True)
        stmt = (
            update(tasks)
            .where(tasks.c.id == oldest.scalar_subquery())
            .where(tasks.c.status == TaskStatus.PENDING.value)
            .values(
                status=TaskStatus.RUNNING.value,
                worker_id=worker_id,
                attempts=tasks.c.attempts + 1,
                lease_until_ms=now + self.lease_ms,
                started_ms=func.coalesce(tasks.c.started_ms, now),
            )
            .returning(*tasks.c)
        )

        def take(_attempt: int) -> Any:
            with self.engine.begin() as conn:
                return conn.execute(stmt).first()

        row = self._retry(take, "claim")
        if row is None:
            return None
        task = TaskRecord.from_row(row)
        return Claim(task=task, worker_id=worker_id, attempt=task.attempts)

    def heartbeat(self, claim: Claim) -> bool:
        """Extends the lease. Returns False when the claim is no longer valid."""
        stmt = (
            update(tasks)
            .where(self._owned(claim))
            .values(lease_until_ms=self._now() + self.lease_ms)
        )
        return self._write(stmt, "heartbeat")

    def cancel_requested(self, claim: Claim) -> bool:
        """True when a client asked to cancel the claimed task (or the claim is gone)."""
        query = select(tasks.c.cancel_requested).where(self._owned(claim))
        row = self._read(lambda conn: conn.execute(query).first())
        return row is None or bool(row[0])

    def set_progress(self, claim: Claim, progress: dict[str, Any]) -> bool:
        """Stores the running task's progress. Returns False if the claim was lost."""
        stmt = update(tasks).where(self._owned(claim)).values(progress=json.dumps(progress))
        return self._write(stmt, "progress")

    def finish_canceled(self, claim: Claim) -> bool:
        """RUNNING → CANCELED after the worker stopped on a cancel request."""
        now = self._now()
        return self._finish(
            claim, status=TaskStatus.CANCELED, ended_ms=now, expires_ms=self._expiry(now)
        )

    def requeue_interrupted(self, claim: Claim) -> bool:
        """RUNNING → PENDING for the claim's holder that is shutting down: the task goes back
        to the queue and the interrupted attempt is not counted (a routine restart never uses
        up a task's attempts). Refused (False) when the claim was lost or a cancel request is
        pending (then `finish_canceled` applies)."""
        stmt = (
            update(tasks)
            .where(self._owned(claim), tasks.c.cancel_requested.is_(False))
            .values(
                status=TaskStatus.PENDING.value,
                attempts=tasks.c.attempts - 1,
                worker_id=None,
                lease_until_ms=None,
                progress=None,
            )
        )
        left = select(tasks.c.status, tasks.c.worker_id, tasks.c.attempts)
        as_left = (TaskStatus.PENDING.value, None, claim.attempt - 1)
        return self._fenced_update(stmt, claim, left, as_left, "requeue", notify=True)

    def succeed(
        self,
        claim: Claim,
        *,
        output_key: str,
        output_seconds: float,
        actual_prompt: str | None,
        effective: dict[str, Any],
    ) -> bool:
        """RUNNING → SUCCEEDED for the claim's holder. Returns False if the claim was lost."""
        now = self._now()
        return self._finish(
            claim,
            not_canceled=True,
            status=TaskStatus.SUCCEEDED,
            ended_ms=now,
            expires_ms=self._expiry(now),
            output_key=output_key,
            output_seconds=output_seconds,
            actual_prompt=actual_prompt,
            effective=json.dumps(effective),
        )

    def fail(
        self, claim: Claim, *, code: str, message: str, effective: dict[str, Any] | None = None
    ) -> bool:
        """RUNNING → FAILED for the claim's holder. Returns False if the claim was lost."""
        now = self._now()
        return self._finish(
            claim,
            status=TaskStatus.FAILED,
            ended_ms=now,
            expires_ms=self._expiry(now),
            error_code=code,
            error_message=message,
            effective=json.dumps(effective) if effective else None,
        )

    def _finish(self, claim: Claim, *, not_canceled: bool = False, **values: Any) -> bool:
        values["status"] = values["status"].value
        values.update(worker_id=None, lease_until_ms=None, progress=None)
        stmt = update(tasks).where(self._owned(claim))
        if not_canceled:  # once a cancel request was accepted, the task never succeeds
            stmt = stmt.where(tasks.c.cancel_requested.is_(False))
        stmt = stmt.values(**values)
        left = select(tasks.c.status, tasks.c.ended_ms, tasks.c.attempts)
        as_left = (values["status"], values["ended_ms"], claim.attempt)
        return self._fenced_update(stmt, claim, left, as_left, "finish")

    def _fenced_update(
        self,
        stmt: Update,
        claim: Claim,
        left: Select[Any],
        as_left: tuple[Any, ...],
        what: str,
        *,
        notify: bool = False,
    ) -> bool:
        """Runs a claim-fenced UPDATE of one task, retried across a lost connection (with a
        NOTIFY for waiting workers when `notify`). Returns True when it changed the row, or,
        on a retry, when the `left` columns already read `as_left`: the lost connection may
        have hidden our own commit. False: the fence refused it (the claim was lost)."""

        def run(attempt: int) -> bool:
            with self.engine.begin() as conn:
                if conn.execute(stmt).rowcount == 1:
                    if notify:
                        notify_work(conn)
                    return True
                if attempt == 1:
                    return False
                row = conn.execute(left.where(tasks.c.id == claim.task.id)).first()
                return row is not None and tuple(row) == as_left

        changed = self._retry(run, what)
        if changed and notify:
            self.wake_local()
        return changed

    # ------------------------------------------------------------------ waiting for work
    def wake_local(self) -> None:
        """After a commit that made a task claimable: wakes the idle workers of this machine
        (SQLite; PostgreSQL's NOTIFY went with the transaction). Never raises."""
        if self._waker is not None:
            self._waker.wake()

    def wait_for_work(self, poll_seconds: float) -> bool:
        """Blocks until a task may have become claimable. On PostgreSQL: until a NOTIFY from
        a create or requeue (or at most max(poll_seconds, 2 s), a safety net); on a SQLite
        file: until a local wake-up (or at most max(poll_seconds, 1 s)); in-memory SQLite: a
        plain sleep of `poll_seconds`. Meant for one worker loop per store.

        Returns True when woken by a notification. Never raises for a lost database: the
        listener reconnects on a later call. Side effects: on PostgreSQL, keeps one extra
        connection open (until `close()`)."""
        if self._waiter is None:
            self._waiter = waiter_for(self.engine, local=self.local_wakeups)
        return self._waiter.wait(poll_seconds)

    def close(self) -> None:
        """Closes the listener connection (if any) and the engine's pool."""
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None
        if self._waker is not None:
            self._waker.close()
            self._waker = None
        self.engine.dispose()

    # ------------------------------------------------------------------ reads for operations
    def ended_since(self, since_ms: int, *, limit: int = 10_000) -> list[TaskRecord]:
        """Finished tasks with `ended_ms` > since_ms, oldest first."""
        query = (
            select(tasks)
            .where(tasks.c.ended_ms > since_ms)
            .order_by(tasks.c.ended_ms, tasks.c.id)
            .limit(limit)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return [TaskRecord.from_row(r) for r in rows]

    def count_by_status(self) -> dict[str, int]:
        query = select(tasks.c.status, func.count()).group_by(tasks.c.status)
        rows = self._read(lambda conn: conn.execute(query).all())
        return {status: int(n) for status, n in rows}

    def count_by_model_status(self) -> dict[tuple[str, str], int]:
        """Tasks per (model name as the client gave it, status)."""
        query = select(tasks.c.model_name, tasks.c.status, func.count()).group_by(
            tasks.c.model_name, tasks.c.status
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return {(name, status): int(n) for name, status, n in rows}

    # ------------------------------------------------------------------ helpers
    def _expiry(self, ended_ms: int) -> int:
        return ended_ms + self.retention_ms

    def _not_expired(self) -> ColumnElement[bool]:
        return or_(tasks.c.expires_ms.is_(None), tasks.c.expires_ms > self._now())

    @staticmethod
    def _of_models(models: Collection[str] | None) -> ColumnElement[bool]:
        """Tasks of these model names; every task for None."""
        if models is None:
            return true()
        return tasks.c.model_name.in_(sorted(models))

    @staticmethod
    def _owned(claim: Claim) -> ColumnElement[bool]:
        return and_(
            tasks.c.id == claim.task.id,
            tasks.c.worker_id == claim.worker_id,
            tasks.c.attempts == claim.attempt,
            tasks.c.status == TaskStatus.RUNNING.value,
        )
