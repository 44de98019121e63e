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
from contextlib import AbstractContextManager, contextmanager
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


@dataclasses.dataclass
class Rig:
    """One worker's look-ahead over the real store with one gated pipeline: what most tests
    here set up before their own steps."""

    store: TaskStore
    clock: FakeClock
    tmp_path: Path
    steps: list[Step] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.pipeline = GatedPipeline(self.steps)

    def submit(self, count: int) -> list[str]:
        return _submit(self.store, self.clock, count)

    def ahead(self, settings: Settings = SETTINGS, budget_mb: int = 64) -> Lookahead:
        return _ahead(
            _loop(self.store, self.tmp_path, self.pipeline, settings), budget_mb=budget_mb
        )

    def running(self, ahead: Lookahead | None = None) -> AbstractContextManager[threading.Event]:
        return running(ahead or self.ahead(), self.pipeline)

    def did(self, name: str, task: str) -> Callable[[], bool]:
        return _did(self.steps, name, task)

    def task(self, task_id: str) -> TaskRecord:
        return _task(self.store, task_id)

    def status(self, task_id: str) -> TaskStatus:
        return _status(self.store, task_id)

    def all(self, ids: list[str], status: TaskStatus) -> Callable[[], bool]:
        return _all(self.store, ids, status)

    def becomes(self, task_id: str, status: TaskStatus) -> Callable[[], bool]:
        return lambda: self.status(task_id) is status


@pytest.fixture
def rig(sqlite_store: TaskStore, clock: FakeClock, tmp_path: Path) -> Rig:
    return Rig(sqlite_store, clock, tmp_path)


def test_the_next_task_is_prepared_while_one_denoises_and_the_last_delivered_meanwhile(
    rig: Rig,
) -> None:
    rig.pipeline.gate("t0", "t1")
    ids = rig.submit(3)
    with rig.running():
        wait_until("t1 prepared while t0 denoises", rig.did("prepare", "t1"))
        assert not rig.did("deliver", "t0")()  # t0 is still on the model
        assert rig.status(ids[2]) is TaskStatus.PENDING  # one task ahead, no more
        rig.pipeline.open("t0")
        wait_until("t0 delivered while t1 denoises", rig.did("deliver", "t0"))
        assert not rig.did("deliver", "t1")()
        assert rig.status(ids[0]) is TaskStatus.SUCCEEDED
        rig.pipeline.open("t1")
        wait_until("every task succeeded", rig.all(ids, TaskStatus.SUCCEEDED))
    threads = {(s.name, s.task): s.thread for s in rig.steps}
    for task in ("t0", "t1", "t2"):
        assert (threads["prepare", task], threads["denoise", task]) == ("claim", "model")
        assert threads["deliver", task] == "deliver"
    assert [s.task for s in rig.steps if s.name == "denoise"] == ["t0", "t1", "t2"]


def test_a_canceled_look_ahead_task_ends_canceled_without_running(rig: Rig) -> None:
    rig.pipeline.gate("t0")
    ids = rig.submit(2)
    with rig.running():
        wait_until("t1 prepared", rig.did("prepare", "t1"))
        assert rig.store.request_cancel(ids[1], account="a") is CancelOutcome.REQUESTED
        wait_until("t1 canceled", rig.becomes(ids[1], TaskStatus.CANCELED))
        assert rig.status(ids[0]) is TaskStatus.RUNNING  # ended before its turn came
        rig.pipeline.open("t0")
        wait_until("t0 succeeded", rig.becomes(ids[0], TaskStatus.SUCCEEDED))
    assert not rig.did("denoise", "t1")()
    assert rig.task(ids[1]).worker_id is None


def test_a_dead_worker_requeues_every_task_it_held(rig: Rig) -> None:
    """The supervisor's `release_worker` (a child died) moves every task held under the
    worker's id back to the queue; this worker's late writes are fenced off, and the tasks run
    again (here: by the same loop, as a restarted worker would)."""
    rig.pipeline.gate("t0")
    ids = rig.submit(2)
    with rig.running():
        wait_until("t1 prepared", rig.did("prepare", "t1"))
        assert [(rig.status(i), rig.task(i).worker_id) for i in ids] == [
            (TaskStatus.RUNNING, "w1")
        ] * 2
        assert rig.store.release_worker("w1") == 2
        assert [rig.status(i) for i in ids] == [TaskStatus.PENDING] * 2
        rig.pipeline.open("t0")
        wait_until("both ran again", rig.all(ids, TaskStatus.SUCCEEDED))
    assert [rig.task(i).attempts for i in ids] == [2, 2]


def test_the_leases_of_every_held_task_are_renewed(rig: Rig) -> None:
    rig.pipeline.gate("t0")
    ids = rig.submit(2)
    with rig.running(rig.ahead(SETTINGS.replace(heartbeat_seconds=0.05))):
        wait_until("t1 prepared", rig.did("prepare", "t1"))
        rig.clock.advance(5_000)  # half a lease: renewed leases end 10 s from now
        renewed = rig.clock() + rig.store.lease_ms
        wait_until(
            "both leases renewed",
            lambda: [rig.task(i).lease_until_ms for i in ids] == [renewed, renewed],
        )
        assert rig.status(ids[1]) is TaskStatus.RUNNING
        rig.pipeline.open("t0")
        wait_until("both succeeded", rig.all(ids, TaskStatus.SUCCEEDED))


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
    rig: Rig,
) -> None:
    rig.pipeline.gate("t0", "t1")
    rig.pipeline.sizes = {"t1": 2 * MB, "t2": MB // 4}  # the budget: 1 MB
    ids = rig.submit(3)
    ahead = rig.ahead(budget_mb=1)
    with rig.running(ahead):
        wait_until("t1 prepared ahead", rig.did("prepare", "t1"))
        assert ahead.held_bytes == 0  # its 2 MB were not kept
        rig.pipeline.open("t0")
        wait_until("t1 on the model", rig.did("denoise", "t1"))
        wait_until("t2 kept ahead", lambda: ahead.held_bytes == MB // 4)
        rig.pipeline.open("t1")
        wait_until("every task succeeded", rig.all(ids, TaskStatus.SUCCEEDED))
    prepared_on = {
        t: [s.thread for s in rig.steps if s.name == "prepare" and s.task == t]
        for t in ("t1", "t2")
    }
    assert prepared_on == {"t1": ["claim", "model"], "t2": ["claim"]}
    assert ahead.held_bytes == 0


def test_a_shutdown_requeues_look_ahead_tasks_at_once(rig: Rig) -> None:
    rig.pipeline.gate("t0")
    ids = rig.submit(2)
    with rig.running() as stop:
        wait_until("t1 prepared", rig.did("prepare", "t1"))
        stop.set()
        wait_until("t1 requeued", rig.becomes(ids[1], TaskStatus.PENDING))
        assert rig.status(ids[0]) is TaskStatus.RUNNING  # the task in hand goes on
        rig.pipeline.open("t0")
        wait_until("t0 succeeded", rig.becomes(ids[0], TaskStatus.SUCCEEDED))
    t1 = rig.task(ids[1])
    assert (t1.status, t1.attempts, t1.worker_id) == (TaskStatus.PENDING, 0, None)
    assert not rig.did("denoise", "t1")()


def test_a_shutdown_finishes_the_task_being_prepared_for_an_idle_model(rig: Rig) -> None:
    """Nothing is ahead of the task the claim thread prepares while the model waits: it is the
    task in hand, not a look-ahead, so a shutdown lets it finish (within the grace period)."""
    rig.pipeline.gate_prepare("t0")
    ids = rig.submit(2)
    with rig.running() as stop:
        wait_until("t0 being prepared", rig.did("prepare", "t0"))
        stop.set()
        rig.pipeline.open("t0")
        wait_until("t0 succeeded", rig.becomes(ids[0], TaskStatus.SUCCEEDED))
    t0, t1 = rig.task(ids[0]), rig.task(ids[1])
    assert (t0.status, t0.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert (t1.status, t1.attempts, t1.worker_id) == (TaskStatus.PENDING, 0, None)
    assert not rig.did("prepare", "t1")()  # nothing claimed after the stop


def test_a_claim_that_fails_is_tried_again(rig: Rig) -> None:
    store = rig.store
    ids = rig.submit(1)
    real_claim, calls = store.claim, []

    def claim(worker_id: str, *, models: Collection[str] | None = None) -> Claim | None:
        calls.append(worker_id)
        if len(calls) == 1:
            raise OperationalError("UPDATE tasks ...", {}, Exception("server closed"))
        return real_claim(worker_id, models=models)

    store.claim = claim  # type: ignore[method-assign]
    with rig.running():
        wait_until("the task succeeded", rig.all(ids, TaskStatus.SUCCEEDED))
    assert len(calls) >= 2
