"""A worker serves one model and claims only its tasks (TaskStore.claim's `models`), oldest
first within its model, on SQLite and PostgreSQL; the queue position and the per-model
counts follow the same split."""

from __future__ import annotations

import dataclasses
import threading

from tests.support.clock import FakeClock
from vace_server.tasks.spec import TaskSpec, VaceFunction
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore

SPEC = TaskSpec(function=VaceFunction.IMAGE_REFERENCE, prompt="p", seed=1)
BIG = ("big", "big-alias")  # one served model under two names
SMALL = ("small",)


def _create(store: TaskStore, clock: FakeClock, model: str) -> str:
    clock.advance(1)
    spec = dataclasses.replace(SPEC, model_name=model, upload_model=model)
    return store.create(spec, account="a", api_key_id="k", request_id="r").id


def test_each_worker_claims_only_its_models_tasks_oldest_first(
    store: TaskStore, clock: FakeClock
) -> None:
    big1 = _create(store, clock, "big")
    small1 = _create(store, clock, "small")
    big2 = _create(store, clock, "big-alias")
    small2 = _create(store, clock, "small")

    claims = [store.claim("w-small", models=SMALL), store.claim("w-big", models=BIG)]
    assert [c.task.id if c else None for c in claims] == [small1, big1]
    claims = [store.claim("w-big", models=BIG), store.claim("w-big", models=BIG)]
    assert [c.task.id if c else None for c in claims] == [big2, None]  # small2 is not its
    assert store.claim("w-other", models=("other",)) is None
    last = store.claim("w-small", models=SMALL)
    assert last is not None and last.task.id == small2
    assert last.task.model_name == "small" and last.task.status is TaskStatus.RUNNING


def test_without_models_a_claim_takes_any_task(store: TaskStore, clock: FakeClock) -> None:
    # the default (no VACE_MODELS): one model, every task, exactly as before the registry
    first = _create(store, clock, "big")
    second = _create(store, clock, "small")
    claims = [store.claim("w"), store.claim("w"), store.claim("w")]
    assert [c.task.id if c else None for c in claims] == [first, second, None]


def test_concurrent_per_model_claims_never_cross(store: TaskStore, clock: FakeClock) -> None:
    ids = {name: {_create(store, clock, name) for _ in range(8)} for name in ("big", "small")}
    claimed: dict[str, list[str]] = {"big": [], "small": []}

    def drain(model: str, worker: str) -> None:
        while (claim := store.claim(worker, models=(model,))) is not None:
            claimed[model].append(claim.task.id)  # list.append is atomic

    threads = [
        threading.Thread(target=drain, args=(model, f"w-{model}-{i}"))
        for model in ("big", "small")
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for model in ("big", "small"):
        assert sorted(claimed[model]) == sorted(ids[model])  # each once, none of the other's


def test_queue_position_and_counts_per_model(store: TaskStore, clock: FakeClock) -> None:
    _create(store, clock, "big")
    _create(store, clock, "small")
    mine = _create(store, clock, "big-alias")
    task = store.get(mine)
    assert task is not None
    assert store.queue_position(task) == 3  # the one queue of the default
    assert store.queue_position(task, models=BIG) == 2  # only its model's workers' queue
    counts = store.count_by_model_status()
    assert counts == {("big", "PENDING"): 1, ("small", "PENDING"): 1, ("big-alias", "PENDING"): 1}
