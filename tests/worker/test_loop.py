"""The worker loop. On the tiny model: bookkeeping writes that fail never fail a task, the
final write waits for the database, a shutdown requeues without using up an attempt, and a
task runs with the engine settings it was accepted under. On a fake pipeline: each branch of
the loop (success, typed failure, crash, storage failure, cancel at a checkpoint, cancel
during the upload, claim lost during the upload, a refused success, shutdowns, an outage)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy.exc import OperationalError

from tests.functions.fakes import FakeMedia, noise
from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.annotators.registry import load_annotators
from vace_server.engine.loader import LoadedModel, load_model
from vace_server.errors import AlgoError, InvalidFile, UploadError
from vace_server.media.clip import MediaSource
from vace_server.model_inputs import ModelProfile
from vace_server.settings import Settings
from vace_server.storage.local import LocalStorage
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.progress import Stage, TaskProgress
from vace_server.tasks.spec import EngineParams, TaskSpec
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import CancelOutcome, Claim, TaskStore
from vace_server.worker import bookkeeping
from vace_server.worker.loop import WorkerLoop
from vace_server.worker.pipeline import Effective, PipelineResult
from vace_server.worker.progress import ProgressHook, TaskCanceled, TaskInterrupted

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
    assert first.effective["preset"] == second.effective["preset"] == "quality"
    # the worker's own settings apply to a row without them; the loaded model is untouched
    assert (second.effective["generation_frames"], second.effective["steps"]) == (5, 2)
    assert (model.profile.num_frames, model.num_inference_steps) == (5, 2)


def test_engine_params_roundtrip_and_old_rows_still_parse() -> None:
    spec = dataclasses.replace(SPEC, engine=EngineParams.from_settings(SETTINGS))
    assert TaskSpec.from_json(spec.to_json()) == spec
    old = SPEC.to_json().replace(', "engine": null', "")
    assert '"engine"' not in old
    assert TaskSpec.from_json(old).engine is None


# ---------------------------------------------------------------- each branch, on a fake pipeline
EFFECTIVE = Effective(
    mean_step_seconds=0.5,
    model="fake",
    generation_size=(64, 32),
    generation_frames=17,
    generation_fps=16,
    output_size=(128, 64),
    output_frames=48,
    output_fps=16,
    seed=7,
    steps=2,
    guidance_scale=5.0,
    flow_shift=3.0,
)
FAKE_MODEL = LoadedModel(
    pipe=None,
    name="fake",
    kind="tiny",
    device="cpu",
    dtype=torch.float32,
    profile=ModelProfile(generation_area=64 * 32, num_frames=17, fps=16),
    num_inference_steps=2,
    guidance_scale=5.0,
    flow_shift=3.0,
)
# No lease renewal during a test (it would race the lost-claim test's clock); cancel polls go on.
FAKE_SETTINGS = Settings(model="tiny", heartbeat_seconds=30, output_fps=16)


class FakePipeline:
    """Reports what a run reports up to denoising (preprocessing in `prepare`, denoising in
    `denoise`), then raises `raises` from `denoise` or writes a stand-in MP4 in `deliver` and
    returns a result of 48 frames at 16 fps (3 s)."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.raises = raises
        self.reported: list[TaskProgress] = []

    def _report(self, on_progress: ProgressHook, stage: Stage) -> None:
        report = TaskProgress.starting(stage)
        self.reported.append(report)
        on_progress(report)

    def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any:
        self._report(on_progress, Stage.PREPROCESSING)
        return spec

    def denoise(self, prepared: Any, *, on_progress: ProgressHook) -> Any:
        self._report(on_progress, Stage.DENOISING)
        if self.raises is not None:
            raise self.raises
        return prepared

    def deliver(self, denoised: Any, out: Path, *, on_progress: ProgressHook) -> PipelineResult:
        spec: TaskSpec = denoised
        out.write_bytes(b"not really an mp4")
        return PipelineResult(
            out=out,
            frames=48,
            width=128,
            height=64,
            fps=16,
            prompt=spec.prompt,
            actual_prompt=spec.prompt if spec.prompt_extend else None,
            effective=EFFECTIVE,
        )


class HookedStorage(LocalStorage):
    """LocalStorage that runs `during_put` while the result is being stored."""

    during_put: Callable[[], None] = staticmethod(lambda: None)

    def put_file(self, key: str, path: Path) -> None:
        self.during_put()
        super().put_file(key, path)


def _fake_loop(
    store: TaskStore, tmp_path: Path, pipeline: FakePipeline, worker_id: str = "w1"
) -> tuple[WorkerLoop, HookedStorage]:
    storage = HookedStorage(tmp_path / "out", public_base_url="http://x", secret=b"s" * 32)
    loop = WorkerLoop(
        settings=FAKE_SETTINGS,
        store=store,
        storage=storage,
        model=FAKE_MODEL,
        media=FakeMedia(),
        annotators=None,  # type: ignore[arg-type]  # not used: the pipeline is given
        worker_id=worker_id,
        pipeline=pipeline,
    )
    return loop, storage


def _stored_files(storage: LocalStorage) -> list[Path]:
    return [p for p in storage.root.rglob("*") if p.is_file()]


def _task(store: TaskStore, task_id: str) -> TaskRecord:
    task = store.get(task_id)
    assert task is not None
    return task


def test_a_run_that_succeeds_records_its_result(store: TaskStore, tmp_path: Path) -> None:
    task_id = _submit(store)
    pipeline = FakePipeline()
    loop, storage = _fake_loop(store, tmp_path, pipeline)
    assert loop.run_once()
    assert not loop.run_once()  # the queue is empty now
    task = _task(store, task_id)
    assert task.status is TaskStatus.SUCCEEDED
    assert (task.output_seconds, task.actual_prompt) == (3.0, SPEC.prompt)
    assert task.effective == EFFECTIVE.to_json()
    assert task.effective["generation_size"] == [64, 32]  # sizes stored as lists
    assert task.output_key is not None
    assert storage.path_for(task.output_key).read_bytes() == b"not really an mp4"
    assert task.output_key.endswith(".mp4") and f"/{task_id}-" in task.output_key
    assert task.progress is None  # cleared at the finish
    assert [p.stage for p in pipeline.reported] == [Stage.PREPROCESSING, Stage.DENOISING]


def test_a_service_error_fails_the_task_with_its_own_code(store: TaskStore, tmp_path: Path) -> None:
    task_id = _submit(store)
    error = InvalidFile("The format of input.ref_images_url is odd.", code="InvalidFile.Format")
    loop, storage = _fake_loop(store, tmp_path, FakePipeline(raises=error))
    assert loop.run_once()
    task = _task(store, task_id)
    assert task.status is TaskStatus.FAILED
    assert (task.error_code, task.error_message) == (
        "InvalidFile.Format",
        "The format of input.ref_images_url is odd.",
    )
    assert _stored_files(storage) == []


def test_any_other_crash_fails_the_task_as_internal_error_algo(
    store: TaskStore, tmp_path: Path
) -> None:
    task_id = _submit(store)
    loop, _storage = _fake_loop(store, tmp_path, FakePipeline(raises=RuntimeError("CUDA OOM")))
    assert loop.run_once()
    task = _task(store, task_id)
    assert task.status is TaskStatus.FAILED
    assert (task.error_code, task.error_message) == (AlgoError.code, AlgoError.default_message)


def test_a_storage_failure_fails_the_task_as_internal_error_upload(
    store: TaskStore, tmp_path: Path
) -> None:
    task_id = _submit(store)
    loop, storage = _fake_loop(store, tmp_path, FakePipeline())

    def broken() -> None:
        raise OSError(28, "No space left on device")

    storage.during_put = broken
    assert loop.run_once()
    task = _task(store, task_id)
    assert task.status is TaskStatus.FAILED
    assert (task.error_code, task.error_message) == (UploadError.code, UploadError.default_message)


def test_a_cancel_at_a_checkpoint_cancels_the_task(store: TaskStore, tmp_path: Path) -> None:
    task_id = _submit(store)

    class CancelAtDenoising(FakePipeline):
        def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any:
            assert store.request_cancel(task_id, account="a") is CancelOutcome.REQUESTED
            return super().prepare(spec, media, on_progress=on_progress)

    loop, storage = _fake_loop(store, tmp_path, CancelAtDenoising(raises=TaskCanceled()))
    assert loop.run_once()
    task = _task(store, task_id)
    assert task.status is TaskStatus.CANCELED and task.ended_ms is not None
    assert _stored_files(storage) == []


def test_a_cancel_during_the_upload_cancels_the_task_and_deletes_the_result(
    store: TaskStore, tmp_path: Path
) -> None:
    """The cancel request arrives while the MP4 is being stored: the success is refused (a
    cancel request once accepted wins), the stored MP4 is deleted, the task ends CANCELED."""
    task_id = _submit(store)
    loop, storage = _fake_loop(store, tmp_path, FakePipeline())
    put: list[str] = []

    def cancel() -> None:
        put.append("put")
        assert store.request_cancel(task_id, account="a") is CancelOutcome.REQUESTED

    storage.during_put = cancel
    assert loop.run_once()
    task = _task(store, task_id)
    assert put == ["put"]
    assert task.status is TaskStatus.CANCELED
    assert (task.output_key, task.effective, task.worker_id) == (None, None, None)
    assert _stored_files(storage) == []


def test_a_claim_lost_during_the_upload_drops_the_result(
    store: TaskStore, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The lease runs out while the MP4 is being stored and another worker takes the task:
    this worker's success is refused by the fence, its MP4 is deleted, and the other worker's
    attempt is left alone."""
    task_id = _submit(store)
    loop, storage = _fake_loop(store, tmp_path, FakePipeline())
    other: list[Claim] = []

    def lose_the_claim() -> None:
        clock.advance(store.lease_ms + 1)
        assert store.requeue_expired_leases() == 1
        claim = store.claim("w2")
        assert claim is not None
        other.append(claim)

    storage.during_put = lose_the_claim
    with caplog.at_level(logging.WARNING, logger="vace_server.worker.loop"):
        assert loop.run_once()
    task = _task(store, task_id)
    assert (task.status, task.worker_id, task.attempts) == (TaskStatus.RUNNING, "w2", 2)
    assert (task.output_key, task.effective) == (None, None)
    assert _stored_files(storage) == []
    assert "its claim was lost" in caplog.text
    # the other worker finishes the task as usual
    assert store.succeed(
        other[0], output_key="k.mp4", output_seconds=1.0, actual_prompt=None, effective={}
    )


class RefusingStore(TaskStore):
    """A store whose success write is refused although no cancel was requested (a fence that
    changed under the worker, as after a reconnect): the branch that only drops the result."""

    def succeed(self, claim: Claim, **values: Any) -> bool:
        return False

    def cancel_requested(self, claim: Claim) -> bool:
        return False


def test_a_refused_success_without_a_cancel_only_drops_the_result(
    store: TaskStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = RefusingStore(store.engine, lease_ms=10_000, max_attempts=2, clock=store._now)
    task_id = _submit(refusing)
    loop, storage = _fake_loop(refusing, tmp_path, FakePipeline())
    with caplog.at_level(logging.WARNING, logger="vace_server.worker.loop"):
        assert loop.run_once()
    assert "result dropped" in caplog.text
    task = _task(store, task_id)
    assert (task.status, task.worker_id) == (TaskStatus.RUNNING, "w1")  # nothing else done
    assert _stored_files(storage) == []


def test_a_shutdown_with_a_cancel_pending_cancels_instead_of_requeueing(
    store: TaskStore, tmp_path: Path
) -> None:
    task_id = _submit(store)

    class CancelThenStop(FakePipeline):
        def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any:
            assert store.request_cancel(task_id, account="a") is CancelOutcome.REQUESTED
            raise TaskInterrupted()

    loop, _storage = _fake_loop(store, tmp_path, CancelThenStop())
    assert loop.run_once()
    task = _task(store, task_id)
    assert (task.status, task.attempts) == (TaskStatus.CANCELED, 1)


def test_the_interrupt_flag_stops_the_run_at_its_first_report(
    store: TaskStore, tmp_path: Path
) -> None:
    task_id = _submit(store)
    pipeline = FakePipeline()
    loop, storage = _fake_loop(store, tmp_path, pipeline)
    loop.interrupted.set()
    assert loop.run_once()
    task = _task(store, task_id)
    assert (task.status, task.attempts, task.worker_id) == (TaskStatus.PENDING, 0, None)
    assert [p.stage for p in pipeline.reported] == [Stage.PREPROCESSING]  # raised at the first
    assert _stored_files(storage) == []


def test_run_forever_rides_out_a_database_outage(store: TaskStore, tmp_path: Path) -> None:
    task_id = _submit(store)
    loop, _storage = _fake_loop(store, tmp_path, FakePipeline())
    loop.settings = FAKE_SETTINGS.replace(poll_seconds=0.01, prefetch=0)  # the serial loop
    real_claim = store.claim
    calls: list[str] = []

    def claim(worker_id: str, *, models: Collection[str] | None = None) -> Claim | None:
        calls.append(worker_id)
        if len(calls) == 1:
            raise _outage()
        return real_claim(worker_id, models=models)

    store.claim = claim  # type: ignore[method-assign]
    loop.run_forever(lambda: _task(store, task_id).status is TaskStatus.SUCCEEDED)
    assert len(calls) == 2  # the failed claim, then the one that ran the task


def test_the_output_is_encoded_with_the_configured_x264_preset_and_crf(
    store: TaskStore, model: LoadedModel, tmp_path: Path, one_torch_thread: None
) -> None:
    """libx264 writes its options into the stream (an SEI message): the worker's file carries
    the settings' preset (ultrafast is the only one without CABAC) and crf."""
    written: dict[str, bytes] = {}
    for preset, crf in (("ultrafast", 30), ("superfast", 18)):
        task_id = _submit(store)
        folder = tmp_path / preset
        loop = _loop(store, model, folder, output_x264_preset=preset, output_crf=crf)
        assert loop.run_once()
        task = store.get(task_id)
        assert task is not None and task.status is TaskStatus.SUCCEEDED
        [video] = (folder / "out").rglob("*.mp4")
        written[preset] = video.read_bytes()
    assert b"cabac=0" in written["ultrafast"] and b" crf=30.0 " in written["ultrafast"]
    assert b"cabac=1" in written["superfast"] and b" crf=18.0 " in written["superfast"]
