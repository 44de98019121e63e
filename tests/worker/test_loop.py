"""The worker loop on the tiny model: bookkeeping writes that fail never fail a task, the
final write waits for the database, a shutdown requeues without using up an attempt, and a
task runs with the engine settings it was accepted under."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.functions.fakes import FakeMedia, noise
from tests.tasks.test_store import SPEC
from vace_server.annotators.registry import load_annotators
from vace_server.engine.loader import LoadedModel, load_model
from vace_server.settings import Settings
from vace_server.storage.local import LocalStorage
from vace_server.tasks.spec import EngineParams, TaskSpec
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker import bookkeeping
from vace_server.worker.loop import WorkerLoop

SETTINGS = Settings(model="tiny", num_frames=5, generation_area=32 * 32, heartbeat_seconds=0.2)
REF = SPEC.references[0].url


def _outage() -> OperationalError:
    return OperationalError("UPDATE tasks ...", {}, Exception("server closed the connection"))


class OutageStore(TaskStore):
    """A store on a real database whose bookkeeping writes fail (progress and heartbeat,
    always) and whose first `final_failures` final writes fail, as in a PostgreSQL outage."""

    final_failures = 0

    def set_progress(self, claim: Claim, progress: dict[str, Any]) -> bool:
        raise _outage()

    def heartbeat(self, claim: Claim) -> bool:
        raise _outage()

    def succeed(self, claim: Claim, **values: Any) -> bool:
        if self.final_failures:
            self.final_failures -= 1
            raise _outage()
        return super().succeed(claim, **values)


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return load_model(SETTINGS)


@pytest.fixture
def outage_store(store: TaskStore) -> Iterator[OutageStore]:
    flaky = OutageStore(store.engine, lease_ms=10_000, max_attempts=2, clock=store._now)
    yield flaky


def _loop(store: TaskStore, model: LoadedModel, tmp_path: Path, **changes: Any) -> WorkerLoop:
    settings = SETTINGS.replace(**changes)
    return WorkerLoop(
        settings=settings,
        store=store,
        storage=LocalStorage(tmp_path / "out", public_base_url="http://x", secret=b"s" * 32),
        model=model,
        media=FakeMedia(images={REF: noise((48, 32), 1)}),
        annotators=load_annotators(settings),
        worker_id="w1",
    )


def _submit(store: TaskStore, spec: TaskSpec = SPEC) -> str:
    return store.create(spec, account="a", api_key_id="k", request_id="r").id


def test_failing_progress_and_heartbeat_writes_never_fail_the_task(
    outage_store: OutageStore,
    model: LoadedModel,
    tmp_path: Path,
    one_torch_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bookkeeping, "RETRY_DELAY_SECONDS", 0.01)
    outage_store.final_failures = 2  # and the final write meets the outage's end
    task_id = _submit(outage_store)
    assert _loop(outage_store, model, tmp_path).run_once()
    task = outage_store.get(task_id)
    assert task is not None
    assert task.status is TaskStatus.SUCCEEDED, (task.error_code, task.error_message)
    assert outage_store.final_failures == 0


def test_a_shutdown_requeues_the_task_without_using_up_an_attempt(
    store: TaskStore, model: LoadedModel, tmp_path: Path, one_torch_thread: None
) -> None:
    task_id = _submit(store)
    loop = _loop(store, model, tmp_path)
    for _ in range(3):  # more routine restarts than the task has attempts (2)
        loop.interrupted.set()  # the grace period is over: stop at the next checkpoint
        assert loop.run_once()
        task = store.get(task_id)
        assert task is not None
        assert (task.status, task.attempts, task.worker_id) == (TaskStatus.PENDING, 0, None)
    loop.interrupted.clear()
    assert loop.run_once()
    task = store.get(task_id)
    assert task is not None and task.status is TaskStatus.SUCCEEDED and task.attempts == 1


def test_a_task_runs_with_the_engine_settings_it_was_accepted_under(
    store: TaskStore, model: LoadedModel, tmp_path: Path, one_torch_thread: None
) -> None:
    accepted = EngineParams(num_frames=9, fps=16, guidance_scale=3.0, num_inference_steps=3)
    recorded = _submit(store, dataclasses.replace(SPEC, engine=accepted))
    old_row = _submit(store)  # written before the engine settings were recorded
    loop = _loop(store, model, tmp_path)
    assert loop.run_once() and loop.run_once()
    first, second = store.get(recorded), store.get(old_row)
    assert first is not None and second is not None
    assert first.status is second.status is TaskStatus.SUCCEEDED
    assert first.effective is not None and second.effective is not None
    got = {k: first.effective[k] for k in ("generation_frames", "steps", "guidance_scale")}
    assert got == {"generation_frames": 9, "steps": 3, "guidance_scale": 3.0}
    # the worker's own settings apply to a row without them; the loaded model is untouched
    assert (second.effective["generation_frames"], second.effective["steps"]) == (5, 2)
    assert (model.profile.num_frames, model.num_inference_steps) == (5, 2)


def test_engine_params_roundtrip_and_old_rows_still_parse() -> None:
    spec = dataclasses.replace(SPEC, engine=EngineParams.from_settings(SETTINGS))
    assert TaskSpec.from_json(spec.to_json()) == spec
    old = SPEC.to_json().replace(', "engine": null', "")
    assert '"engine"' not in old
    assert TaskSpec.from_json(old).engine is None
