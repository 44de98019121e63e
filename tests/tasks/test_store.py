from __future__ import annotations

import threading

from tests.support.clock import FakeClock
from vace_server.tasks.spec import Reference, ReferenceRole, TaskSpec, VaceFunction
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, ListFilter, TaskStore

SPEC = TaskSpec(
    function=VaceFunction.IMAGE_REFERENCE,
    prompt="a cat",
    seed=7,
    size=(1280, 720),
    references=(Reference("http://example.com/a.png", ReferenceRole.SUBJECT),),
)


def _create(store: TaskStore, account: str = "acct") -> str:
    return store.create(SPEC, account=account, api_key_id="k", request_id="r").id


def test_create_and_get_roundtrip(store: TaskStore) -> None:
    task_id = _create(store)
    task = store.get(task_id, account="acct")
    assert task is not None
    assert task.status is TaskStatus.PENDING
    assert task.spec == SPEC
    assert store.get(task_id, account="someone-else") is None


def test_claim_is_fifo_and_exclusive(store: TaskStore, clock: FakeClock) -> None:
    first = _create(store)
    clock.advance(1)
    second = _create(store)
    a = store.claim("w1")
    b = store.claim("w2")
    assert a is not None and b is not None
    assert (a.task.id, b.task.id) == (first, second)
    assert a.task.status is TaskStatus.RUNNING and a.attempt == 1
    assert store.claim("w3") is None


def test_concurrent_claims_never_share_a_task(store: TaskStore) -> None:
    ids = {_create(store) for _ in range(30)}
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        while (claim := store.claim(worker)) is not None:
            with lock:
                claimed.append(claim.task.id)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_succeed_requires_the_live_claim(store: TaskStore) -> None:
    _create(store)
    claim = store.claim("w1")
    assert claim is not None
    store.release_worker("w1")  # the worker was declared dead; task requeued
    assert not store.succeed(
        claim, output_key="k.mp4", output_seconds=5, actual_prompt=None, effective={}
    )
    again = store.claim("w2")
    assert again is not None and again.attempt == 2
    assert store.succeed(
        again, output_key="k.mp4", output_seconds=5.0, actual_prompt="x", effective={"a": 1}
    )
    done = store.get(again.task.id)
    assert done is not None
    assert done.status is TaskStatus.SUCCEEDED
    assert done.effective == {"a": 1} and done.output_key == "k.mp4"


def test_heartbeat_extends_lease_and_expired_lease_requeues(
    store: TaskStore, clock: FakeClock
) -> None:
    task_id = _create(store)
    claim = store.claim("w1")
    assert claim is not None
    clock.advance(9_000)
    assert store.heartbeat(claim)
    clock.advance(9_000)
    assert store.requeue_expired_leases() == 0  # heartbeat kept it alive
    clock.advance(2_000)
    assert store.requeue_expired_leases() == 1
    task = store.get(task_id)
    assert task is not None and task.status is TaskStatus.PENDING
    assert not store.heartbeat(claim)


def test_attempts_are_bounded(store: TaskStore) -> None:
    task_id = _create(store)
    for worker in ("w1", "w2"):
        assert store.claim(worker) is not None
        store.release_worker(worker)
    task = store.get(task_id)
    assert task is not None
    assert task.status is TaskStatus.FAILED
    assert task.error_code == "InternalError"
    assert task.attempts == 2


def test_cancel_pending_at_once_running_on_request(store: TaskStore) -> None:
    pending = _create(store)
    assert store.request_cancel(pending, account="other") is CancelOutcome.REFUSED
    assert store.request_cancel(pending, account="acct") is CancelOutcome.CANCELED
    assert store.request_cancel(pending, account="acct") is CancelOutcome.REFUSED
    task = store.get(pending)
    assert task is not None and task.status is TaskStatus.CANCELED and task.ended_ms

    running = _create(store)
    claim = store.claim("w")
    assert claim is not None
    assert not store.cancel_requested(claim)
    assert store.request_cancel(running, account="acct") is CancelOutcome.REQUESTED
    assert store.cancel_requested(claim)
    task = store.get(running)
    assert task is not None and task.status is TaskStatus.RUNNING  # until the worker stops
    # a cancel accepted while running always wins over a late success
    assert not store.succeed(
        claim, output_key="k", output_seconds=1, actual_prompt=None, effective={}
    )
    assert store.finish_canceled(claim)
    task = store.get(running)
    assert task is not None and task.status is TaskStatus.CANCELED
    assert store.request_cancel(running, account="acct") is CancelOutcome.REFUSED


def test_dead_worker_with_cancel_request_ends_canceled(store: TaskStore) -> None:
    task_id = _create(store)
    assert store.claim("w") is not None
    store.request_cancel(task_id, account="acct")
    store.release_worker("w")
    task = store.get(task_id)
    assert task is not None and task.status is TaskStatus.CANCELED


def test_progress_and_queue_position(store: TaskStore, clock: FakeClock) -> None:
    first = _create(store)
    clock.advance(1)
    second = store.get(_create(store))
    assert second is not None
    assert store.queue_position(second) == 2
    claim = store.claim("w")
    assert claim is not None and claim.task.id == first
    assert store.queue_position(second) == 1
    assert store.set_progress(claim, {"stage": "denoising", "step": 1, "total_steps": 2})
    task = store.get(first)
    assert task is not None and task.progress == {"stage": "denoising", "step": 1, "total_steps": 2}
    store.fail(claim, code="X", message="y")
    task = store.get(first)
    assert task is not None and task.progress is None


def test_fail_records_code_and_message(store: TaskStore) -> None:
    _create(store)
    claim = store.claim("w")
    assert claim is not None
    assert store.fail(claim, code="InvalidURL", message="Invalid URL provided in your request.")
    task = store.get(claim.task.id)
    assert task is not None
    assert (task.status, task.error_code) == (TaskStatus.FAILED, "InvalidURL")


def test_retention_hides_then_purges(store: TaskStore, clock: FakeClock) -> None:
    _create(store)
    claim = store.claim("w")
    assert claim is not None
    store.succeed(claim, output_key="out/x.mp4", output_seconds=5, actual_prompt=None, effective={})
    clock.advance(3_600_000 - 1)
    assert store.get(claim.task.id) is not None
    clock.advance(1)
    assert store.get(claim.task.id) is None
    assert store.purge_expired() == ["out/x.mp4"]
    assert store.count_by_status() == {}


def test_overdue_tasks_fail(store: TaskStore, clock: FakeClock) -> None:
    task_id = _create(store)
    clock.advance(10_000)
    assert store.fail_overdue(5_000, code="InternalError.Timeout", message="late") == 1
    task = store.get(task_id)
    assert task is not None and task.error_code == "InternalError.Timeout"


def test_list_filters_and_pages(store: TaskStore, clock: FakeClock) -> None:
    ids = []
    for _ in range(5):
        ids.append(_create(store))
        clock.advance(1000)
    _create(store, account="other")
    flt = ListFilter(account="acct", start_ms=0, end_ms=clock.ms)
    page, total = store.list_page(flt, page_no=1, page_size=2)
    assert total == 5
    assert [t.id for t in page] == ids[::-1][:2]
    page3, _ = store.list_page(flt, page_no=3, page_size=2)
    assert [t.id for t in page3] == [ids[0]]
    only, total = store.list_page(
        ListFilter(
            account="acct", start_ms=0, end_ms=clock.ms, status=TaskStatus.PENDING, task_id=ids[2]
        ),
        page_no=1,
        page_size=10,
    )
    assert total == 1 and only[0].id == ids[2]


def test_tasks_survive_reopening(database_url: str, store: TaskStore) -> None:
    from vace_server.tasks import db

    task_id = _create(store)
    engine = db.make_engine(database_url)
    db.upgrade(engine)  # idempotent
    reopened = TaskStore(engine)
    task = reopened.get(task_id)
    assert task is not None and task.status is TaskStatus.PENDING
    engine.dispose()
