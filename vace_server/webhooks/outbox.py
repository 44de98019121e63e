"""Webhook deliveries waiting in the database: which are due, who sends them, what happened.

A delivery becomes due once its task has ended. A dispatcher takes it by moving its
`next_attempt_ms` forward with a compare-and-set (so two API replicas never send the same
attempt), then records success, or failure with an exponential backoff, bounded attempts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, and_, select, update

from vace_server.clock import Clock, wall_clock_ms
from vace_server.tasks.models import TaskRecord, tasks, webhooks
from vace_server.tasks.status import TaskStatus

# Seconds to wait after the n-th failed attempt (then FAILED for good).
BACKOFF_SECONDS = (2, 10, 30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
SEND_LEASE_MS = 120_000  # a taken delivery is retried by others if nothing is recorded by then
TERMINAL = [s.value for s in TaskStatus if s.is_terminal]


@dataclass(frozen=True)
class Delivery:
    id: str
    url: str
    attempt: int  # 1-based number of this attempt
    task: TaskRecord


class Outbox:
    def __init__(self, engine: Engine, *, clock: Clock = wall_clock_ms) -> None:
        self.engine = engine
        self._now = clock

    def take_due(self, limit: int = 16) -> list[Delivery]:
        """Claims up to `limit` due deliveries of ended tasks for this process."""
        now = self._now()
        query = (
            select(webhooks, tasks)
            .join(tasks, tasks.c.id == webhooks.c.task_id)
            .where(
                webhooks.c.state == "pending",
                webhooks.c.next_attempt_ms <= now,
                tasks.c.status.in_(TERMINAL),
            )
            .order_by(webhooks.c.next_attempt_ms)
            .limit(limit)
        )
        taken: list[Delivery] = []
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
            for row in rows:
                m = row._mapping
                claimed = conn.execute(
                    update(webhooks)
                    .where(
                        and_(
                            webhooks.c.id == m[webhooks.c.id],
                            webhooks.c.next_attempt_ms == m[webhooks.c.next_attempt_ms],
                        )
                    )
                    .values(next_attempt_ms=now + SEND_LEASE_MS)
                ).rowcount
                if claimed:
                    task = TaskRecord.from_row(_TaskRow(m))
                    attempt = m[webhooks.c.attempts] + 1
                    taken.append(Delivery(m[webhooks.c.id], m[webhooks.c.url], attempt, task))
        return taken

    def delivered(self, delivery: Delivery) -> None:
        self._set(delivery, state="delivered", delivered_ms=self._now(), last_error=None)

    def failed(self, delivery: Delivery, error: str) -> None:
        """Records a failed attempt: retried after the backoff, or FAILED for good."""
        if delivery.attempt >= MAX_ATTEMPTS:
            self._set(delivery, state="failed", last_error=error)
            return
        wait_ms = BACKOFF_SECONDS[delivery.attempt - 1] * 1000
        self._set(delivery, next_attempt_ms=self._now() + wait_ms, last_error=error)

    def states(self, task_id: str) -> list[dict[str, object]]:
        """The deliveries of one task (for tests and operators)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(webhooks).where(webhooks.c.task_id == task_id)).all()
        return [dict(r._mapping) for r in rows]

    def _set(self, delivery: Delivery, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == delivery.id)
                .values(attempts=delivery.attempt, **values)
            )


class _TaskRow:
    """Adapts a joined row so TaskRecord.from_row reads the task's columns."""

    def __init__(self, mapping: object) -> None:
        self._mapping = {c.name: mapping[c] for c in tasks.c}  # type: ignore[index]
