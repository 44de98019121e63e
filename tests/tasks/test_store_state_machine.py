"""Property-based test of the task store's state machine (hypothesis stateful testing).

Hypothesis drives random sequences of every transition the store offers: create, claim by
several workers, heartbeat, progress, cancel (PENDING and RUNNING), finish (succeed, fail,
canceled) by the owning worker and by workers that lost their claim, lease expiry on a fake
clock, dead-worker release, the graceful requeue of a shutdown (`requeue_interrupted`) and the
release of a worker killed by one (`release_stopped_worker`), both giving the attempt back,
timeouts, retention purge and whole maintenance passes (with a real output folder). A plain
in-memory model says what each call must return and what the table must hold; after every step
the invariants are checked against the database itself: only legal states, terminal tasks
frozen, end time iff terminal, no task lost or duplicated, list / get / counts agreeing, at most
one live claim per task, attempts bounded, FIFO claims (a requeued task keeps its place: the
queue is ordered by submission). No claim is ever handed out twice, so a stale one never comes
back to life, not even after a requeue that gave its attempt back.

Worker ids are incarnations, as every launcher makes them (host, slot, random suffix): a worker
that shut down (requeued its task, or was killed and released by its supervisor) never claims
again; the next one of its slot has a new id. A worker whose claim was lost otherwise (lease
expiry, dead-worker release) keeps its id and may claim again, the harder case for the fence.
The fence after a refund rests on that: the same id claiming the same task again after giving
its attempt back would get the very same (worker id, attempt) claim.

On SQLite and (fewer examples) on the PostgreSQL server the test run starts.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, select

from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.errors import InternalError, TaskTimeout
from vace_server.storage.local import LocalStorage
from vace_server.tasks import db
from vace_server.tasks import store as store_module
from vace_server.tasks.maintenance import Maintenance
from vace_server.tasks.models import TaskRecord, tasks, webhooks
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, Claim, ListFilter, TaskStore

LEASE_MS = 10_000
MAX_ATTEMPTS = 2
RETENTION_MS = 25_000
TIMEOUT_MS = 35_000
WORKERS = ("w1", "w2", "w3")
ACCOUNTS = ("alice", "bob")
STORED = {s for s in TaskStatus if s is not TaskStatus.UNKNOWN}
BUSY = (TaskStatus.PENDING, TaskStatus.RUNNING)
FOREVER = ListFilter(account="", start_ms=0, end_ms=2**62)
# Steps of the fake clock: around the lease, the timeout and the retention period.
STEPS_MS = (1, 999, LEASE_MS - 1, LEASE_MS, LEASE_MS + 1, TIMEOUT_MS, RETENTION_MS)


@dataclass
class Expected:
    """What the model says one row must hold (the fields the state machine moves)."""

    id: str
    account: str
    created_ms: int
    status: TaskStatus = TaskStatus.PENDING
    attempts: int = 0
    worker_id: str | None = None
    lease_until_ms: int | None = None
    started_ms: int | None = None
    ended_ms: int | None = None
    expires_ms: int | None = None
    cancel_requested: bool = False
    progress: dict[str, Any] | None = None
    error_code: str | None = None
    output_key: str | None = None

    def end(self, status: TaskStatus, now: int, **values: Any) -> None:
        self.status, self.ended_ms, self.expires_ms = status, now, now + RETENTION_MS
        self.worker_id = self.lease_until_ms = self.progress = None
        for name, value in values.items():
            setattr(self, name, value)

    def matches(self, record: TaskRecord) -> dict[str, tuple[Any, Any]]:
        """Fields where the record differs from the model: name → (model, record)."""
        return {
            f.name: (getattr(self, f.name), getattr(record, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(record, f.name)
        }


class StoreMachine(RuleBasedStateMachine):
    store_class: type[TaskStore] = TaskStore

    def __init__(self, engine: Engine, out: Path) -> None:
        super().__init__()
        store_module.uuid.rng.seed(0)  # type: ignore[attr-defined]
        with engine.begin() as conn:  # one migrated database, emptied for each example
            conn.execute(delete(webhooks))
            conn.execute(delete(tasks))
        shutil.rmtree(out, ignore_errors=True)
        self.clock = FakeClock()
        self.store = self.store_class(
            engine,
            lease_ms=LEASE_MS,
            max_attempts=MAX_ATTEMPTS,
            retention_ms=RETENTION_MS,
            clock=self.clock,
        )
        self.storage = LocalStorage(out / "outputs", public_base_url="http://x", secret=b"s")
        self.upload = out / "video.mp4"
        self.upload.write_bytes(b"not really a video")
        self.maintenance = Maintenance(
            self.store, self.storage, interval=60, task_timeout_ms=TIMEOUT_MS
        )
        self.model: dict[str, Expected] = {}
        self.frozen: dict[str, TaskRecord] = {}  # terminal tasks as first seen terminal
        self.handed_out: list[Claim] = []
        self.incarnation = dict.fromkeys(WORKERS, 0)  # slot → workers of it shut down so far
        self.created: list[str] = []
        self.uploads = 0

    # ------------------------------------------------------------------ model helpers
    @property
    def now(self) -> int:
        return self.clock.ms

    def owner(self, claim: Claim) -> Expected | None:
        """The model's task when `claim` is still its live claim, else None."""
        task = self.model.get(claim.task.id)
        live = (
            task is not None
            and task.status is TaskStatus.RUNNING
            and (task.worker_id, task.attempts) == (claim.worker_id, claim.attempt)
        )
        return task if live else None

    def worker_id(self, slot: str) -> str:
        """The id of the slot's current worker."""
        n = self.incarnation[slot]
        return f"{slot}.{n}" if n else slot

    def retire(self, worker_id: str) -> None:
        """That worker shut down: its slot's next worker has a new id."""
        slot = worker_id.split(".")[0]
        if self.worker_id(slot) == worker_id:
            self.incarnation[slot] += 1

    @staticmethod
    def refund(task: Expected) -> None:
        """Back to the queue, the interrupted attempt not counted (its queue place is its
        submission time, so it keeps it; its first start time stays)."""
        task.status, task.attempts = TaskStatus.PENDING, task.attempts - 1
        task.worker_id = task.lease_until_ms = task.progress = None

    def visible(self, task: Expected) -> bool:
        return task.expires_ms is None or task.expires_ms > self.now

    def recover(self, pick: Any) -> int:
        """The model of `_recover`: running tasks chosen by `pick` end or go back to the queue."""
        moved = 0
        for task in self.model.values():
            if task.status is not TaskStatus.RUNNING or not pick(task):
                continue
            moved += 1
            if task.cancel_requested:
                task.end(TaskStatus.CANCELED, self.now)
            elif task.attempts >= MAX_ATTEMPTS:
                task.end(TaskStatus.FAILED, self.now, error_code=InternalError.code)
            else:
                task.status = TaskStatus.PENDING
                task.worker_id = task.lease_until_ms = task.progress = None
        return moved

    def time_out(self) -> int:
        late = [
            t
            for t in self.model.values()
            if t.status in BUSY and t.created_ms < self.now - TIMEOUT_MS
        ]
        for task in late:
            task.end(TaskStatus.FAILED, self.now, error_code=TaskTimeout.code)
        return len(late)

    def purge(self) -> list[str]:
        gone = [
            t for t in self.model.values() if t.expires_ms is not None and t.expires_ms <= self.now
        ]
        for task in gone:
            del self.model[task.id]
            self.frozen.pop(task.id, None)
        return sorted(t.output_key for t in gone if t.output_key)

    # ------------------------------------------------------------------ client side
    @initialize(accounts=st.lists(st.sampled_from(ACCOUNTS), max_size=3))
    def queue(self, accounts: list[str]) -> None:
        """Starts most runs with a few tasks already queued, some in the same millisecond."""
        assert self.store.claim("w1") is None  # nothing to claim in an empty queue
        for i, account in enumerate(accounts):
            self.create(account, tick=i % 2)

    @rule(account=st.sampled_from(ACCOUNTS), tick=st.sampled_from((0, 1)))
    def create(self, account: str, tick: int) -> None:
        self.clock.advance(tick)  # 0: same millisecond as the one before (ties go by id)
        record = self.store.create(SPEC, account=account, api_key_id="k", request_id="r")
        assert record.status is TaskStatus.PENDING and record.attempts == 0
        self.model[record.id] = Expected(record.id, account, created_ms=self.now)
        self.created.append(record.id)

    @precondition(lambda self: self.created)
    @rule(data=st.data(), own=st.booleans())
    def cancel(self, data: st.DataObject, own: bool) -> None:
        """A client cancels a task: a RUNNING one, a PENDING one, or any ever created (maybe
        finished or purged by now)."""
        which = data.draw(st.sampled_from((*BUSY, None)), label="which")
        busy = [i for i, t in self.model.items() if t.status is which]
        task_id = data.draw(st.sampled_from(busy or self.created), label="task")
        task = self.model.get(task_id)
        account = task.account if task and own else "mallory"
        outcome = self.store.request_cancel(task_id, account=account)
        if task is None or not own or task.status.is_terminal:
            assert outcome is CancelOutcome.REFUSED
        elif task.status is TaskStatus.PENDING:
            assert outcome is CancelOutcome.CANCELED
            task.end(TaskStatus.CANCELED, self.now)
        else:
            assert outcome is CancelOutcome.REQUESTED
            task.cancel_requested = True

    # ------------------------------------------------------------------ worker side
    @precondition(lambda self: self.count(TaskStatus.PENDING))
    @rule(slot=st.sampled_from(WORKERS))
    def claim(self, slot: str) -> None:
        worker = self.worker_id(slot)
        pending = [t for t in self.model.values() if t.status is TaskStatus.PENDING]
        claim = self.store.claim(worker)
        head = min(pending, key=lambda t: (t.created_ms, t.id))
        assert claim is not None and claim.task.id == head.id, "claims must be FIFO"
        fence = (claim.task.id, claim.worker_id, claim.attempt)
        assert fence not in {(c.task.id, c.worker_id, c.attempt) for c in self.handed_out}, (
            "a claim handed out twice: a stale one is live again"
        )
        head.status, head.worker_id, head.attempts = TaskStatus.RUNNING, worker, head.attempts + 1
        head.lease_until_ms = self.now + LEASE_MS
        head.started_ms = head.started_ms if head.started_ms is not None else self.now
        assert claim.attempt == head.attempts and claim.task.status is TaskStatus.RUNNING
        self.handed_out.append(claim)

    def a_claim(self, data: st.DataObject) -> Claim:
        """Often a live claim, else any ever handed out (most of them stale by now)."""
        live = [c for c in self.handed_out if self.owner(c)]
        prefer_live: bool = bool(live) and data.draw(st.booleans(), label="live")
        pool = live if prefer_live else self.handed_out
        return data.draw(st.sampled_from(pool), label="claim")

    @precondition(lambda self: self.handed_out)
    @rule(data=st.data(), what=st.sampled_from(("heartbeat", "progress", "poll")))
    def bookkeeping(self, data: st.DataObject, what: str) -> None:
        """What a running worker does meanwhile: renew its lease, report progress, poll for a
        cancel request. Each is refused (False / "stop") once the claim is lost."""
        claim = self.a_claim(data)
        task = self.owner(claim)
        if what == "heartbeat":
            assert self.store.heartbeat(claim) is (task is not None)
            if task:
                task.lease_until_ms = self.now + LEASE_MS
        elif what == "progress":
            assert self.store.set_progress(claim, {"step": self.now}) is (task is not None)
            if task:
                task.progress = {"step": self.now}
        else:
            wanted = task is None or task.cancel_requested
            assert self.store.cancel_requested(claim) is wanted

    @precondition(lambda self: self.handed_out)
    @rule(data=st.data(), how=st.sampled_from(("succeed", "fail", "canceled")))
    def finish(self, data: st.DataObject, how: str) -> None:
        """A worker ends its task; only the live claim's holder may (and never succeeds once a
        cancel was requested)."""
        claim = self.a_claim(data)
        task = self.owner(claim)
        if how == "succeed":
            self.succeed(claim, task)
        elif how == "fail":
            assert self.store.fail(claim, code="InvalidFile.Content", message="x") is bool(task)
            if task:
                task.end(TaskStatus.FAILED, self.now, error_code="InvalidFile.Content")
        else:
            assert self.store.finish_canceled(claim) is (task is not None)
            if task:
                task.end(TaskStatus.CANCELED, self.now)

    def succeed(self, claim: Claim, task: Expected | None) -> None:
        """As the worker does: upload the output, then finish; drop the output if refused."""
        self.uploads += 1
        key = f"{claim.task.id}/{self.uploads}.mp4"  # each run writes its own object
        self.storage.put_file(key, self.upload)
        done = self.store.succeed(
            claim, output_key=key, output_seconds=1.0, actual_prompt=None, effective={}
        )
        assert done is (task is not None and not task.cancel_requested)
        if done and task:
            task.end(TaskStatus.SUCCEEDED, self.now, output_key=key)
        else:
            self.storage.delete(key)

    @precondition(lambda self: self.handed_out)
    @rule(data=st.data())
    def requeue_interrupted(self, data: st.DataObject) -> None:
        """A worker shutting down (its grace period over) hands its task back: PENDING, the
        attempt not counted. Refused once the claim is lost or a cancel was requested (the
        worker then finishes it CANCELED). A worker that gave an attempt back claims nothing
        more (the calls refused here stand for stale callers, not for shutdowns)."""
        claim = self.a_claim(data)
        task = self.owner(claim)
        back = task is not None and not task.cancel_requested
        assert self.store.requeue_interrupted(claim) is back
        if back and task:
            self.refund(task)
            self.retire(claim.worker_id)

    # ------------------------------------------------------------------ time and recovery
    @precondition(lambda self: self.count(TaskStatus.RUNNING))
    @rule(slot=st.sampled_from(WORKERS))
    def release_dead_worker(self, slot: str) -> None:
        worker = self.worker_id(slot)
        expected = self.recover(lambda t: t.worker_id == worker)
        assert self.store.release_worker(worker) == expected

    @precondition(lambda self: self.count(TaskStatus.RUNNING))
    @rule(slot=st.sampled_from(WORKERS))
    def release_stopped_worker(self, slot: str) -> None:
        """The supervisor killed a worker that outlived a shutdown's grace period: its tasks go
        back without counting the attempt (never FAILED for attempts), CANCELED when asked."""
        worker = self.worker_id(slot)
        moved = [t for t in self.model.values() if t.status is TaskStatus.RUNNING]
        moved = [t for t in moved if t.worker_id == worker]
        for task in moved:
            if task.cancel_requested:
                task.end(TaskStatus.CANCELED, self.now)
            else:
                self.refund(task)
        assert self.store.release_stopped_worker(worker) == len(moved)
        if any(t.status is TaskStatus.PENDING for t in moved):
            self.retire(worker)

    @rule(
        ms=st.sampled_from(STEPS_MS),
        then=st.sampled_from(("nothing", "leases", "overdue", "purge", "maintenance")),
    )
    def time_passes(self, ms: int, then: str) -> None:
        """The clock moves on, then one housekeeping step (or all of them, as maintenance)."""
        self.clock.advance(ms)
        if then in ("leases", "maintenance"):
            expected = self.recover(lambda t: t.lease_until_ms < self.now)
            if then == "leases":
                assert self.store.requeue_expired_leases() == expected
        if then in ("overdue", "maintenance"):
            expected = self.time_out()
            if then == "overdue":
                got = self.store.fail_overdue(TIMEOUT_MS, code=TaskTimeout.code, message="late")
                assert got == expected
        if then in ("purge", "maintenance"):
            keys = self.purge()
            if then == "purge":  # the caller deletes the outputs (as maintenance does)
                assert sorted(self.store.purge_expired()) == keys
                for key in keys:
                    self.storage.delete(key)
        if then == "maintenance":
            self.maintenance.run_once()

    # ------------------------------------------------------------------ invariants
    def rows(self) -> dict[str, TaskRecord]:
        with self.store.engine.connect() as conn:
            return {r.id: TaskRecord.from_row(r) for r in conn.execute(select(tasks))}

    @invariant()
    def holds(self) -> None:
        """Every check, after every step, on one read of the whole table."""
        rows = self.rows()
        for check in (
            self.every_row_is_legal,
            self.the_table_is_the_model,
            self.terminal_tasks_never_change,
            self.one_live_claim_per_task,
            self.reads_agree_with_the_table,
            self.queue_positions_are_fifo,
            self.outputs_are_those_of_succeeded_tasks,
        ):
            check(rows)

    def every_row_is_legal(self, rows: dict[str, TaskRecord]) -> None:
        for r in rows.values():
            assert r.status in STORED
            assert (r.ended_ms is not None) is r.status.is_terminal, r
            assert r.expires_ms == (r.ended_ms + RETENTION_MS if r.ended_ms else None), r
            running = r.status is TaskStatus.RUNNING
            assert (r.worker_id is not None) is running and (
                r.lease_until_ms is not None
            ) is running
            assert r.progress is None or running, r
            assert 0 <= r.attempts <= r.max_attempts == MAX_ATTEMPTS, r
            assert r.attempts >= 1 if running else True, r
            assert r.attempts < r.max_attempts if r.status is TaskStatus.PENDING else True, r
            # Scheduled once claimed; a refunded first attempt leaves a PENDING task at 0 that
            # keeps its first start time (the model says exactly which).
            assert r.started_ms is not None if r.attempts > 0 else True, r
            assert r.created_ms <= (r.started_ms or r.created_ms) <= (r.ended_ms or 2**62)
            assert (r.output_key is not None) is (r.status is TaskStatus.SUCCEEDED), r
            assert (r.error_code is not None) is (r.status is TaskStatus.FAILED), r

    def the_table_is_the_model(self, rows: dict[str, TaskRecord]) -> None:
        assert set(rows) == set(self.model), "a task was lost or appeared"
        for task_id, task in self.model.items():
            assert task.matches(rows[task_id]) == {}, task_id

    def terminal_tasks_never_change(self, rows: dict[str, TaskRecord]) -> None:
        for task_id, record in rows.items():
            if record.status.is_terminal:
                assert self.frozen.setdefault(task_id, record) == record

    def one_live_claim_per_task(self, rows: dict[str, TaskRecord]) -> None:
        """No task runs under two claims (a stale one never comes back to life); a RUNNING
        task is held by a claim handed out."""
        for task_id, record in rows.items():
            live = [
                c
                for c in self.handed_out
                if c.task.id == task_id
                and record.status is TaskStatus.RUNNING
                and (c.worker_id, c.attempt) == (record.worker_id, record.attempts)
            ]
            assert len(live) == (record.status is TaskStatus.RUNNING), (task_id, live)

    def reads_agree_with_the_table(self, rows: dict[str, TaskRecord]) -> None:
        for account in ACCOUNTS:
            mine = [t for t in self.model.values() if t.account == account and self.visible(t)]
            newest = sorted(mine, key=lambda t: (-t.created_ms, t.id))
            flt = dataclasses.replace(FOREVER, account=account)
            page, total = self.store.list_page(flt, page_no=1, page_size=1000)
            assert [r.id for r in page] == [t.id for t in newest] and total == len(newest)
            assert all(r == rows[r.id] for r in page)
            busy = sum(t.status in BUSY for t in self.model.values() if t.account == account)
            assert self.store.count_in_flight(account) == busy
        for task in self.model.values():
            seen = self.store.get(task.id, account=task.account)
            assert seen == (rows[task.id] if self.visible(task) else None)
            assert self.store.get(task.id, account="mallory") is None
        counts = {s.value: n for s in STORED if (n := self.count(s))}
        assert self.store.count_by_status() == counts

    def queue_positions_are_fifo(self, rows: dict[str, TaskRecord]) -> None:
        pending = [t for t in self.model.values() if t.status is TaskStatus.PENDING]
        fifo = sorted(pending, key=lambda t: (t.created_ms, t.id))
        assert [self.store.queue_position(rows[t.id]) for t in fifo] == list(
            range(1, len(fifo) + 1)
        )

    def outputs_are_those_of_succeeded_tasks(self, rows: dict[str, TaskRecord]) -> None:
        on_disk = {
            p.relative_to(self.storage.root).as_posix()
            for p in self.storage.root.rglob("*")
            if p.is_file()
        }
        assert on_disk == {t.output_key for t in self.model.values() if t.output_key}

    def count(self, status: TaskStatus) -> int:
        return sum(t.status is status for t in self.model.values())


@pytest.mark.slow  # the random search of the store's state machine: over a minute per database
@pytest.mark.usefixtures("replayable_ids")
def test_store_state_machine(database_url: str, tmp_path: Path) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    on_sqlite = engine.dialect.name == "sqlite"
    budget = settings(
        max_examples=80 if on_sqlite else 25,
        stateful_step_count=40 if on_sqlite else 30,
        deadline=None,  # a shared machine: no per-example timing
        database=None,  # no example folder in the checkout
        suppress_health_check=[HealthCheck.too_slow],
    )
    try:
        # a factory works (hypothesis calls it), though the stub asks for the class
        run_state_machine_as_test(
            lambda: StoreMachine(engine, tmp_path / "run"),  # type: ignore[arg-type]
            settings=budget,
        )
    finally:
        engine.dispose()
