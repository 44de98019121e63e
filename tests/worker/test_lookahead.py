"""The pipelined worker (worker/lookahead.py) on the real store (SQLite) with a gated fake
pipeline: the next task is prepared while one denoises and the last is delivered off the model
thread; a canceled look-ahead task ends CANCELED unrun; a dead worker's held tasks are all
requeued; every held lease is renewed; claims stay FIFO across two workers; the memory budget;
a shutdown requeues look-ahead tasks at once but finishes the task in hand (also the one being
prepared for an idle model); a claim that fails is tried again."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.functions.fakes import FakeMedia
from tests.support.clock import FakeClock
from tests.support.fake_workers import wait_until
from tests.tasks.test_store import SPEC
from tests.worker.test_loop import EFFECTIVE, FAKE_MODEL
from vace_server.media.clip import MediaSource
from vace_server.settings import Settings
from vace_server.storage.local import LocalStorage
from vace_server.tasks import db
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.progress import Stage, TaskProgress
from vace_server.tasks.spec import TaskSpec
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, Claim, TaskStore
from vace_server.worker.lookahead import Lookahead
from vace_server.worker.loop import WorkerLoop
from vace_server.worker.pipeline import PipelineResult
from vace_server.worker.progress import ProgressHook

# No lease renewal unless a test asks for it; short polls so the threads react at once.
SETTINGS = Settings(model="tiny", heartbeat_seconds=30, poll_seconds=0.01, output_fps=16)
MB = 2**20


@dataclasses.dataclass(frozen=True)
class Step:
    name: str  # prepare | denoise | deliver
    task: str  # the task's prompt: t0, t1, ...
    thread: str
    worker: str


@dataclasses.dataclass(frozen=True)
class Held:
    """A fake pipeline's intermediate result, with the size the look-ahead budgets."""

    spec: TaskSpec
    nbytes: int


class GatedPipeline:
    """Records each step (task, thread); `denoise` of a task waits for its gate when it has
    one (`prepare` for its `prepare_gates` one); `prepare` of a task returns inputs of
    `sizes[task]` bytes (default 0)."""

    def __init__(self, steps: list[Step], worker: str = "w1") -> None:
        self.steps = steps
        self.worker = worker
        self.gates: dict[str, threading.Event] = {}
        self.prepare_gates: dict[str, threading.Event] = {}
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def gate(self, *tasks: str) -> None:
        for task in tasks:
            self.gates[task] = threading.Event()

    def gate_prepare(self, *tasks: str) -> None:
        for task in tasks:
            self.prepare_gates[task] = threading.Event()

    def open(self, *tasks: str) -> None:
        for gates in (self.gates, self.prepare_gates):
            for task in tasks or tuple(gates):
                if task in gates:
                    gates[task].set()

    def _record(self, name: str, spec: TaskSpec) -> None:
        with self._lock:
            step = Step(name, spec.prompt, threading.current_thread().name, self.worker)
            self.steps.append(step)

    def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any:
        on_progress(TaskProgress.starting(Stage.PREPROCESSING))
        self._record("prepare", spec)
        gate = self.prepare_gates.get(spec.prompt)
        if gate is not None:
            assert gate.wait(10), "a gate was never opened"
        return Held(spec, self.sizes.get(spec.prompt, 0))

    def denoise(self, prepared: Any, *, on_progress: ProgressHook) -> Any:
        on_progress(TaskProgress.starting(Stage.DENOISING))
        self._record("denoise", prepared.spec)
        gate = self.gates.get(prepared.spec.prompt)
        if gate is not None:
            assert gate.wait(10), "a gate was never opened"
        return Held(prepared.spec, 0)

    def deliver(self, denoised: Any, out: Path, *, on_progress: ProgressHook) -> PipelineResult:
        self._record("deliver", denoised.spec)
        out.write_bytes(b"not really an mp4")
        return PipelineResult(out, 48, 128, 64, 16, denoised.spec.prompt, None, EFFECTIVE)


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Iterator[TaskStore]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'tasks.db'}")
    db.upgrade(engine)
    store = TaskStore(engine, lease_ms=10_000, max_attempts=3, clock=clock)
    yield store
    store.close()


def _loop(
    store: TaskStore, tmp_path: Path, pipeline: GatedPipeline, settings: Settings = SETTINGS
) -> WorkerLoop:
    storage = LocalStorage(tmp_path / "out", public_base_url="http://x", secret=b"s" * 32)
    return WorkerLoop(
        settings=settings,
        store=store,
        storage=storage,
        model=FAKE_MODEL,
        media=FakeMedia(),
        annotators=None,  # type: ignore[arg-type]  # not used: the pipeline is given
        worker_id=pipeline.worker,
        pipeline=pipeline,
    )


def _submit(store: TaskStore, clock: FakeClock, count: int) -> list[str]:
    ids = []
    for i in range(count):
        clock.advance(1)  # distinct creation times: the queue order is the submission order
        spec = dataclasses.replace(SPEC, prompt=f"t{i}")
        ids.append(store.create(spec, account="a", api_key_id="k", request_id="r").id)
    return ids


def _task(store: TaskStore, task_id: str) -> TaskRecord:
    task = store.get(task_id)
    assert task is not None
    return task


def _status(store: TaskStore, task_id: str) -> TaskStatus:
    return _task(store, task_id).status


def _all(store: TaskStore, ids: list[str], status: TaskStatus) -> Callable[[], bool]:
    return lambda: all(_status(store, i) is status for i in ids)


def _did(steps: list[Step], name: str, task: str) -> Callable[[], bool]:
    return lambda: any(s.name == name and s.task == task for s in list(steps))


@contextmanager
def running(ahead: Lookahead, *pipelines: GatedPipeline) -> Iterator[threading.Event]:
    """Runs `ahead` on a thread named "model"; stops it (gates opened) when the block ends."""
    stop = threading.Event()
    thread = threading.Thread(target=ahead.run, args=(stop.is_set,), name="model")
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        for pipeline in pipelines:
            pipeline.open()
        thread.join(15)
        assert not thread.is_alive()


def _ahead(loop: WorkerLoop, depth: int = 1, budget_mb: int = 64) -> Lookahead:
    return Lookahead(loop, depth=depth, budget_bytes=budget_mb * MB)


def test_the_next_task_is_prepared_while_one_denoises_and_the_last_delivered_meanwhile(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0", "t1")
    ids = _submit(store, clock, 3)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline):
        wait_until("t1 prepared while t0 denoises", _did(steps, "prepare", "t1"))
        assert not _did(steps, "deliver", "t0")()  # t0 is still on the model
        assert _status(store, ids[2]) is TaskStatus.PENDING  # one task ahead, no more
        pipeline.open("t0")
        wait_until("t0 delivered while t1 denoises", _did(steps, "deliver", "t0"))
        assert not _did(steps, "deliver", "t1")()
        assert _status(store, ids[0]) is TaskStatus.SUCCEEDED
        pipeline.open("t1")
        wait_until("every task succeeded", _all(store, ids, TaskStatus.SUCCEEDED))
    threads = {(s.name, s.task): s.thread for s in steps}
    for task in ("t0", "t1", "t2"):
        assert (threads["prepare", task], threads["denoise", task]) == ("claim", "model")
        assert threads["deliver", task] == "deliver"
    assert [s.task for s in steps if s.name == "denoise"] == ["t0", "t1", "t2"]


def test_a_canceled_look_ahead_task_ends_canceled_without_running(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0")
    ids = _submit(store, clock, 2)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline):
        wait_until("t1 prepared", _did(steps, "prepare", "t1"))
        assert store.request_cancel(ids[1], account="a") is CancelOutcome.REQUESTED
        wait_until("t1 canceled", lambda: _status(store, ids[1]) is TaskStatus.CANCELED)
        assert _status(store, ids[0]) is TaskStatus.RUNNING  # ended before its turn came
        pipeline.open("t0")
        wait_until("t0 succeeded", lambda: _status(store, ids[0]) is TaskStatus.SUCCEEDED)
    assert not _did(steps, "denoise", "t1")()
    assert _task(store, ids[1]).worker_id is None


def test_a_dead_worker_requeues_every_task_it_held(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    """The supervisor's `release_worker` (a child died) moves every task held under the
    worker's id back to the queue; this worker's late writes are fenced off, and the tasks run
    again (here: by the same loop, as a restarted worker would)."""
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0")
    ids = _submit(store, clock, 2)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline):
        wait_until("t1 prepared", _did(steps, "prepare", "t1"))
        assert [(_status(store, i), _task(store, i).worker_id) for i in ids] == [
            (TaskStatus.RUNNING, "w1")
        ] * 2
        assert store.release_worker("w1") == 2
        assert [_status(store, i) for i in ids] == [TaskStatus.PENDING] * 2
        pipeline.open("t0")
        wait_until("both ran again", _all(store, ids, TaskStatus.SUCCEEDED))
    assert [_task(store, i).attempts for i in ids] == [2, 2]


def test_the_leases_of_every_held_task_are_renewed(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0")
    ids = _submit(store, clock, 2)
    loop = _loop(store, tmp_path, pipeline, SETTINGS.replace(heartbeat_seconds=0.05))
    with running(_ahead(loop), pipeline):
        wait_until("t1 prepared", _did(steps, "prepare", "t1"))
        clock.advance(5_000)  # half a lease: renewed leases end 10 s from now
        renewed = clock() + store.lease_ms
        wait_until(
            "both leases renewed",
            lambda: [_task(store, i).lease_until_ms for i in ids] == [renewed, renewed],
        )
        assert _status(store, ids[1]) is TaskStatus.RUNNING
        pipeline.open("t0")
        wait_until("both succeeded", _all(store, ids, TaskStatus.SUCCEEDED))


class OrderedStore(TaskStore):
    """Records every claim in the order the database granted it (a lock around the claim,
    so the record cannot interleave)."""

    claims: list[tuple[str, str]]
    lock = threading.Lock()

    def claim(self, worker_id: str, *, models: Collection[str] | None = None) -> Claim | None:
        with self.lock:
            claim = super().claim(worker_id, models=models)
            if claim is not None:
                self.claims.append((worker_id, claim.task.spec.prompt))
            return claim


def test_claims_stay_fifo_across_workers_and_each_runs_in_claim_order(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = OrderedStore(sqlite_store.engine, lease_ms=10_000, clock=clock)
    store.claims = []
    steps: list[Step] = []
    pipelines = [GatedPipeline(steps, "w1"), GatedPipeline(steps, "w2")]
    ids = _submit(store, clock, 8)
    loops = [_ahead(_loop(store, tmp_path / p.worker, p)) for p in pipelines]
    with running(loops[0], *pipelines), running(loops[1], *pipelines):
        wait_until("every task succeeded", _all(store, ids, TaskStatus.SUCCEEDED))
    assert [task for _worker, task in store.claims] == [f"t{i}" for i in range(8)]
    for worker in ("w1", "w2"):
        claimed = [task for w, task in store.claims if w == worker]
        denoised = [s.task for s in steps if s.name == "denoise" and s.worker == worker]
        assert denoised == claimed
    assert sorted(s.task for s in steps if s.name == "deliver") == [f"t{i}" for i in range(8)]


def test_a_look_ahead_task_over_the_memory_budget_is_prepared_again_in_its_turn(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0", "t1")
    pipeline.sizes = {"t1": 2 * MB, "t2": MB // 4}  # the budget: 1 MB
    ids = _submit(store, clock, 3)
    ahead = _ahead(_loop(store, tmp_path, pipeline), budget_mb=1)
    with running(ahead, pipeline):
        wait_until("t1 prepared ahead", _did(steps, "prepare", "t1"))
        assert ahead.held_bytes == 0  # its 2 MB were not kept
        pipeline.open("t0")
        wait_until("t1 on the model", _did(steps, "denoise", "t1"))
        wait_until("t2 kept ahead", lambda: ahead.held_bytes == MB // 4)
        pipeline.open("t1")
        wait_until("every task succeeded", _all(store, ids, TaskStatus.SUCCEEDED))
    assert [s.thread for s in steps if s.name == "prepare" and s.task == "t1"] == [
        "claim",
        "model",
    ]
    assert [s.thread for s in steps if s.name == "prepare" and s.task == "t2"] == ["claim"]
    assert ahead.held_bytes == 0


def test_a_shutdown_requeues_look_ahead_tasks_at_once(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate("t0")
    ids = _submit(store, clock, 2)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline) as stop:
        wait_until("t1 prepared", _did(steps, "prepare", "t1"))
        stop.set()
        wait_until("t1 requeued", lambda: _status(store, ids[1]) is TaskStatus.PENDING)
        assert _status(store, ids[0]) is TaskStatus.RUNNING  # the task in hand goes on
        pipeline.open("t0")
        wait_until("t0 succeeded", lambda: _status(store, ids[0]) is TaskStatus.SUCCEEDED)
    t1 = _task(store, ids[1])
    assert (t1.status, t1.attempts, t1.worker_id) == (TaskStatus.PENDING, 0, None)
    assert not _did(steps, "denoise", "t1")()


def test_a_shutdown_finishes_the_task_being_prepared_for_an_idle_model(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    """Nothing is ahead of the task the claim thread prepares while the model waits: it is the
    task in hand, not a look-ahead, so a shutdown lets it finish (within the grace period)."""
    store = sqlite_store
    steps: list[Step] = []
    pipeline = GatedPipeline(steps)
    pipeline.gate_prepare("t0")
    ids = _submit(store, clock, 2)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline) as stop:
        wait_until("t0 being prepared", _did(steps, "prepare", "t0"))
        stop.set()
        pipeline.open("t0")
        wait_until("t0 succeeded", lambda: _status(store, ids[0]) is TaskStatus.SUCCEEDED)
    t0, t1 = _task(store, ids[0]), _task(store, ids[1])
    assert (t0.status, t0.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert (t1.status, t1.attempts, t1.worker_id) == (TaskStatus.PENDING, 0, None)
    assert not _did(steps, "prepare", "t1")()  # nothing claimed after the stop


def test_a_claim_that_fails_is_tried_again(
    sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    store = sqlite_store
    steps: list[Step] = []
    ids = _submit(store, clock, 1)
    real_claim, calls = store.claim, []

    def claim(worker_id: str, *, models: Collection[str] | None = None) -> Claim | None:
        calls.append(worker_id)
        if len(calls) == 1:
            raise OperationalError("UPDATE tasks ...", {}, Exception("server closed"))
        return real_claim(worker_id, models=models)

    store.claim = claim  # type: ignore[method-assign]
    pipeline = GatedPipeline(steps)
    with running(_ahead(_loop(store, tmp_path, pipeline)), pipeline):
        wait_until("the task succeeded", _all(store, ids, TaskStatus.SUCCEEDED))
    assert len(calls) >= 2
