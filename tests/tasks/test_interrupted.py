"""A task stopped by a shutdown goes back to the queue without using up an attempt; the
transition is fenced by the claim like every other."""

from __future__ import annotations

from tests.tasks.test_store import SPEC
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, TaskStore


def _create(store: TaskStore) -> str:
    return store.create(SPEC, account="a", api_key_id="k", request_id="r").id


def test_requeue_interrupted_refunds_the_attempt_and_is_fenced(store: TaskStore) -> None:
    task_id = _create(store)
    for _ in range(store.max_attempts + 2):  # more restarts than attempts: never FAILED
        claim = store.claim("w1")
        assert claim is not None and claim.attempt == 1
        assert store.requeue_interrupted(claim)
        task = store.get(task_id)
        assert task is not None
        assert (task.status, task.attempts, task.worker_id) == (TaskStatus.PENDING, 0, None)
        assert not store.requeue_interrupted(claim)  # the claim is spent
    claim = store.claim("w2")
    assert claim is not None
    store.release_worker("w2")  # a crash does count
    again = store.claim("w3")
    assert again is not None and again.attempt == 2
    assert not store.requeue_interrupted(claim)  # a stale claim cannot move it
    assert store.get(task_id).status is TaskStatus.RUNNING  # type: ignore[union-attr]


def test_a_stale_claim_of_the_same_worker_cannot_requeue(store: TaskStore) -> None:
    # The fence is (worker, attempt), not the worker alone: the same worker id that lost the
    # task and claimed it again must not hand back (and refund) the newer attempt.
    task_id = _create(store)
    stale = store.claim("w1")
    assert stale is not None and stale.attempt == 1
    store.release_worker("w1")
    current = store.claim("w1")
    assert current is not None and current.attempt == 2
    assert not store.requeue_interrupted(stale)
    task = store.get(task_id)
    assert task is not None
    assert (task.status, task.attempts, task.worker_id) == (TaskStatus.RUNNING, 2, "w1")
    assert store.requeue_interrupted(current)


def test_requeue_interrupted_refuses_a_task_with_a_cancel_request(store: TaskStore) -> None:
    task_id = _create(store)
    claim = store.claim("w1")
    assert claim is not None
    assert store.request_cancel(task_id, account="a") is CancelOutcome.REQUESTED
    assert not store.requeue_interrupted(claim)
    assert store.finish_canceled(claim)


def test_release_stopped_worker_requeues_without_counting(store: TaskStore) -> None:
    first, second = _create(store), _create(store)
    a, b = store.claim("w1"), store.claim("w1")
    assert a is not None and b is not None
    store.request_cancel(second, account="a")
    other = _create(store)
    assert store.claim("w2") is not None
    assert store.release_stopped_worker("w1") == 2
    tasks = {t: store.get(t) for t in (first, second, other)}
    assert tasks[first].status is TaskStatus.PENDING and tasks[first].attempts == 0  # type: ignore[union-attr]
    assert tasks[second].status is TaskStatus.CANCELED  # type: ignore[union-attr]
    assert tasks[other].status is TaskStatus.RUNNING  # type: ignore[union-attr]
