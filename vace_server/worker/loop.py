"""The worker loop: claim → prepare (fetch + preprocess) → denoise → deliver (MP4) → store →
finish.

The same loop runs in the embedded child process, in `vace-server worker`, and in the Ray actors
of `vace-server ray-workers`. With `VACE_PREFETCH` > 0 (the default) `worker.lookahead` runs its
three steps on three threads, so the model never waits for a task's CPU work; with 0 a task runs
start to finish before the next is claimed (`run_once`). It owns no state transitions itself:
every transition is a TaskStore call.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from vace_server.annotators.base import AnnotatorSet
from vace_server.clock import wall_clock_ms
from vace_server.engine.loader import LoadedModel
from vace_server.engine.prompt_rewrite import PromptRewriter
from vace_server.engine.runner import free_memory
from vace_server.errors import UploadError
from vace_server.logging_setup import task_id_var
from vace_server.media.clip import MediaSource
from vace_server.media.images import media_for_task
from vace_server.settings import Settings
from vace_server.storage.base import Storage
from vace_server.tasks.progress import Stage, TaskProgress
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.bookkeeping import settle
from vace_server.worker.heartbeat import Heartbeat
from vace_server.worker.pipeline import Pipeline, PipelineResult, TaskPipeline, algo_failure
from vace_server.worker.progress import Progress, TaskCanceled, TaskInterrupted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """A run's result and where its MP4 now is in the output storage."""

    key: str
    result: PipelineResult


class Job:
    """One task a worker holds, from its claim to its end: the claim, its lease renewal and
    cancel watch (a running `Heartbeat`), its progress hook (the cancel / shutdown checkpoint),
    a temporary folder for its MP4, and what its steps produced so far. `close()` ends them."""

    def __init__(
        self, store: TaskStore, claim: Claim, settings: Settings, interrupted: threading.Event
    ) -> None:
        self.claim = claim
        self.beat = Heartbeat(store, claim, settings.queue.heartbeat_seconds)
        self.beat.__enter__()  # the lease is renewed from the claim on, whatever step it is in
        self.progress = Progress(store, claim, self.beat.canceled, interrupted=interrupted)
        self._tmp = tempfile.TemporaryDirectory(prefix="vace-out-")
        self.out = Path(self._tmp.name) / "out.mp4"
        self.started = time.monotonic()
        self.prepared: Any = None  # the pipeline's `prepare` result, until denoised
        self.denoised: Any = None  # its `denoise` result, until delivered
        self.inline = False  # prepared again on the model's thread when its turn comes
        self.held_bytes = 0  # what the look-ahead counts against its memory budget

    @property
    def canceled(self) -> bool:
        """A cancel request came (or the claim was lost)."""
        return self.beat.canceled.is_set()

    @contextmanager
    def context(self) -> Iterator[None]:
        """The task id in the log lines of the current thread."""
        token = task_id_var.set(self.claim.task.id)
        try:
            yield
        finally:
            task_id_var.reset(token)

    def close(self) -> None:
        self.prepared = self.denoised = None
        try:
            self.progress.close()
        finally:
            self.beat.__exit__(None, None, None)
            self._tmp.cleanup()


class WorkerLoop:
    def __init__(
        self,
        *,
        settings: Settings,
        store: TaskStore,
        storage: Storage,
        model: LoadedModel,
        media: MediaSource,
        annotators: AnnotatorSet,
        worker_id: str,
        rewriter: PromptRewriter | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        """`pipeline` replaces the one built from `model`, `annotators` and `rewriter`."""
        self.settings = settings
        self.store = store
        self.storage = storage
        self.model = model
        self.media = media
        self.worker_id = worker_id
        self.pipeline = pipeline or TaskPipeline(
            model=model, annotators=annotators, settings=settings, rewriter=rewriter
        )
        # Set when a shutdown's grace period is over: the task in hand stops at its next
        # checkpoint and goes back to the queue.
        self.interrupted = threading.Event()

    def run_forever(self, should_stop: Callable[[], bool]) -> None:
        """Claims and runs tasks until `should_stop()`; rides out a database outage (a claim
        or a wait that fails is logged and tried again). Pipelined when `VACE_PREFETCH` > 0."""
        queue = self.settings.queue
        if queue.prefetch > 0:
            from vace_server.worker.lookahead import Lookahead

            budget = queue.prefetch_memory_mb * 1024 * 1024
            Lookahead(self, depth=queue.prefetch, budget_bytes=budget).run(should_stop)
            return
        failing = False
        while not should_stop():
            try:
                if not self.run_once():
                    self.store.wait_for_work(self.settings.queue.poll_seconds)
            except SQLAlchemyError as exc:
                failing = self.database_down(exc, failing)
                continue
            if failing:
                log.info("worker %s: database back", self.worker_id)
                failing = False

    def database_down(self, exc: SQLAlchemyError, failing: bool) -> bool:
        """Logs an outage once, waits a moment. Returns: True (now failing)."""
        if not failing:
            log.warning("worker %s: database unavailable, waiting: %s", self.worker_id, exc)
        time.sleep(min(1.0, self.settings.queue.poll_seconds * 4))
        return True

    def run_once(self) -> bool:
        """Claims and processes one task, its three steps in a row. Returns False when the
        queue was empty."""
        claim = self.store.claim(self.worker_id, models=self.settings.claim_names())
        if claim is None:
            return False
        job = self.open_job(claim)
        try:
            with job.context():
                if self.prepare(job) and self.denoise(job):
                    self.deliver(job)
        finally:
            job.close()
        return True

    def open_job(self, claim: Claim) -> Job:
        """A claimed task's Job (its lease renewed and its cancel watched from now on)."""
        job = Job(self.store, claim, self.settings, self.interrupted)
        with job.context():
            log.info("task %s claimed (attempt %d)", claim.task.id, claim.attempt)
        return job

    # ------------------------------------------------------------------ the three steps
    def prepare(self, job: Job) -> bool:
        """Fetch + preprocess (CPU). Returns False when the task ended (failed, canceled,
        requeued) instead."""
        spec = job.claim.task.spec

        def step() -> None:
            media = media_for_task(self.media, job.claim.task.account, spec.upload_model)
            job.prepared = self.pipeline.prepare(spec, media, on_progress=job.progress)

        return self._step(job, step)

    def denoise(self, job: Job) -> bool:
        """The model's step. A task canceled while it waited its turn ends here, unrun.
        Returns False when the task ended instead."""

        def step() -> None:
            job.progress.check_cancel()
            job.denoised = self.pipeline.denoise(job.prepared, on_progress=job.progress)
            job.prepared = None  # the inputs are no longer needed: free them now

        return self._step(job, step)

    def deliver(self, job: Job) -> None:
        """Frames → MP4 → output storage → SUCCEEDED (CPU and I/O)."""
        stored: list[Stored] = []

        def step() -> None:
            result = self.pipeline.deliver(job.denoised, job.out, on_progress=job.progress)
            job.denoised = None
            timings = result.effective.timings
            with timings.timed("store") if timings else contextlib.nullcontext():
                key = self._upload(job.claim, job.out, job.progress)
            stored.append(Stored(key=key, result=result))

        if self._step(job, step):
            self._record(job, stored[0])

    def _step(self, job: Job, step: Callable[[], None]) -> bool:
        """Runs one step; when it raises, ends the task accordingly. Returns: it went through."""
        claim = job.claim
        try:
            step()
            return True
        except TaskInterrupted:
            self.requeue_interrupted(claim)
        except TaskCanceled:
            self.stop_canceled(claim)
        except Exception as exc:  # a ServiceError as it is, any other crash InternalError.Algo
            err = algo_failure(exc)
            code, message = err.code, err.message  # stored with its field mentions, for the API
            log.warning("task %s failed: %s %s", claim.task.id, code, err)
            self._settle(claim, "fail", lambda: self.store.fail(claim, code=code, message=message))
        return False

    def _settle(self, claim: Claim, what: str, operation: Callable[[], bool]) -> bool:
        """A final store call, retried across a database outage until the task's timeout."""
        timeout_ms = self.settings.store.task_timeout_hours * 3_600_000
        left_s = (claim.task.created_ms + timeout_ms - wall_clock_ms()) / 1000
        deadline = time.monotonic() + max(left_s, self.settings.queue.lease_seconds)
        return settle(operation, what=f"{what} of task {claim.task.id}", deadline=deadline)

    def _record(self, job: Job, stored: Stored) -> None:
        claim = job.claim
        result = stored.result
        succeeded = self._settle(
            claim,
            "success",
            lambda: self.store.succeed(
                claim,
                output_key=stored.key,
                output_seconds=result.seconds,
                actual_prompt=result.actual_prompt,
                effective=result.effective.to_json(),
            ),
        )
        if not succeeded:  # refused by the fence: the result is never shown, so it goes
            self.storage.delete(stored.key)
            # A cancel request arrived during the upload (then the task ends CANCELED), or the
            # claim was lost (the read says so too; `stop_canceled` then only logs it).
            if self._settle(claim, "read", lambda: self.store.cancel_requested(claim)):
                self.stop_canceled(claim)
            else:
                log.warning(
                    "task %s finished after losing its claim; result dropped", claim.task.id
                )
            return
        log.info("task %s succeeded in %.1fs", claim.task.id, time.monotonic() - job.started)

    def stop_canceled(self, claim: Claim) -> None:
        free_memory(self.model)
        if self._settle(claim, "cancel", lambda: self.store.finish_canceled(claim)):
            log.info("task %s canceled", claim.task.id)
        else:
            log.warning(
                "task %s stopped: its claim was lost (lease expired and requeued, or ended "
                "elsewhere)",
                claim.task.id,
            )

    def requeue_interrupted(self, claim: Claim, *, started: bool = True) -> None:
        """Back to the queue on a shutdown, the attempt not counted: a task in hand once the
        grace period is over, a look-ahead task (`started=False`) at once."""
        free_memory(self.model)
        if self._settle(claim, "requeue", lambda: self.store.requeue_interrupted(claim)):
            why = "(grace period over)" if started else "before its turn (a look-ahead task)"
            log.warning(
                "task %s interrupted by the worker's shutdown %s: back in the queue, attempt %d "
                "not counted",
                claim.task.id,
                why,
                claim.attempt,
            )
        else:  # a cancel request came meanwhile, or the claim was lost
            self.stop_canceled(claim)

    def _upload(self, claim: Claim, path: Path, progress: Progress) -> str:
        """Puts the MP4 at `path` into the output storage. Returns: its key.
        Raises: UploadError (the storage failed), TaskCanceled (a checkpoint)."""
        day = datetime.now(tz=UTC).strftime("%Y-%m-%d")
        key = f"{day}/{claim.task.id}-{secrets.token_urlsafe(24)}.mp4"
        progress(TaskProgress.starting(Stage.UPLOADING))
        try:
            self.storage.put_file(key, path)
        except Exception as exc:
            log.exception("could not store the result of task %s", claim.task.id)
            raise UploadError() from exc
        return key
