"""Claims from several processes at once (separate engines and connections, as separate
workers have) never hand one task to two of them; on both SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

from tests.tasks.test_store import SPEC
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore

TASKS = 120
PROCESSES = 4


def _drain(url: str, worker: str, start: threading.Barrier) -> list[str]:
    """In a child process: claim until the queue is empty; the ids claimed, in order."""
    engine = db.make_engine(url)
    store = TaskStore(engine)
    store.count_by_status()  # connect before the start line
    start.wait(timeout=120)  # all children connected: they start claiming together
    claimed: list[str] = []
    while (claim := store.claim(worker)) is not None:
        claimed.append(claim.task.id)
    store.close()
    return claimed


def test_claims_from_many_processes_never_share_a_task(store: TaskStore) -> None:
    ids = {store.create(SPEC, account="a", api_key_id="k", request_id="r").id for _ in range(TASKS)}
    url = store.engine.url.render_as_string(hide_password=False)
    context = mp.get_context("spawn")
    # A barrier rather than a wall-clock start line: however slowly the children start on a
    # busy machine, none begins claiming before all of them are connected.
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        start = manager.Barrier(PROCESSES)
        futures = [pool.submit(_drain, url, f"w{i}", start) for i in range(PROCESSES)]
        per_worker = [f.result(timeout=240) for f in futures]
    counts = Counter(task_id for claimed in per_worker for task_id in claimed)
    assert set(counts) == ids  # every task claimed ...
    assert max(counts.values()) == 1  # ... by exactly one worker
    assert sum(1 for claimed in per_worker if claimed) >= 2, "the claims did not overlap"
    for task_id in ids:
        task = store.get(task_id)
        assert task is not None and task.attempts == 1 and task.worker_id is not None
