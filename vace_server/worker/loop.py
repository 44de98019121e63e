"""The worker loop: claim → run the task pipeline (fetch media … encode) → store → finish.

The same loop runs in the embedded child process, in `vace-server worker`, and in the Ray actors
of `vace-server ray-workers`. It owns no state transitions itself: every transition is a
TaskStore call.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
        or a wait that fails is logged and tried again)."""
        failing = False
        while not should_stop():
            try:
                if not self.run_once():
                    self.store.wait_for_work(self.settings.queue.poll_seconds)
            except SQLAlchemyError as exc:
                if not failing:
                    log.warning("worker %s: database unavailable, waiting: %s", self.worker_id, exc)
                failing = True
                time.sleep(min(1.0, self.settings.queue.poll_seconds * 4))
                continue
            if failing:
                log.info("worker %s: database back", self.worker_id)
                failing = False

    def run_once(self) -> bool:
        """Claims and processes one task. Returns False when the queue was empty."""
        claim = self.store.claim(self.worker_id)
        if claim is None:
            return False
        token = task_id_var.set(claim.task.id)
        try:
            log.info("task %s claimed (attempt %d)", claim.task.id, claim.attempt)
            with Heartbeat(self.store, claim, self.settings.queue.heartbeat_seconds) as beat:
                progress = Progress(self.store, claim, beat.canceled, interrupted=self.interrupted)
                try:
                    self._process(claim, progress)
                finally:
                    progress.close()
        finally:
            task_id_var.reset(token)
        return True

    def _settle(self, claim: Claim, what: str, operation: Callable[[], bool]) -> bool:
        """A final store call, retried across a database outage until the task's timeout."""
        timeout_ms = self.settings.store.task_timeout_hours * 3_600_000
        left_s = (claim.task.created_ms + timeout_ms - wall_clock_ms()) / 1000
        deadline = time.monotonic() + max(left_s, self.settings.queue.lease_seconds)
        return settle(operation, what=f"{what} of task {claim.task.id}", deadline=deadline)

    def _process(self, claim: Claim, progress: Progress) -> None:
        started = time.monotonic()
        try:
            stored = self._produce(claim, progress)
        except TaskInterrupted:
            self._requeue_interrupted(claim)
            return
        except TaskCanceled:
            self._stop_canceled(claim)
            return
        except Exception as exc:  # a ServiceError as it is, any other crash InternalError.Algo
            err = algo_failure(exc)
            code, message = err.code, err.message  # stored with its field mentions, for the API
            log.warning("task %s failed: %s %s", claim.task.id, code, err)
            self._settle(claim, "fail", lambda: self.store.fail(claim, code=code, message=message))
            return
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
            # claim was lost (the read says so too; `_stop_canceled` then only logs it).
            if self._settle(claim, "read", lambda: self.store.cancel_requested(claim)):
                self._stop_canceled(claim)
            else:
                log.warning(
                    "task %s finished after losing its claim; result dropped", claim.task.id
                )
            return
        log.info("task %s succeeded in %.1fs", claim.task.id, time.monotonic() - started)

    def _stop_canceled(self, claim: Claim) -> None:
        free_memory(self.model)
        if self._settle(claim, "cancel", lambda: self.store.finish_canceled(claim)):
            log.info("task %s canceled", claim.task.id)
        else:
            log.warning(
                "task %s stopped: its claim was lost (lease expired and requeued, or ended "
                "elsewhere)",
                claim.task.id,
            )

    def _requeue_interrupted(self, claim: Claim) -> None:
        free_memory(self.model)
        if self._settle(claim, "requeue", lambda: self.store.requeue_interrupted(claim)):
            log.warning(
                "task %s interrupted by the worker's shutdown (grace period over): back in the "
                "queue, attempt %d not counted",
                claim.task.id,
                claim.attempt,
            )
        else:  # a cancel request came meanwhile, or the claim was lost
            self._stop_canceled(claim)

    def _produce(self, claim: Claim, progress: Progress) -> Stored:
        spec = claim.task.spec
        task_media = media_for_task(self.media, claim.task.account, spec.upload_model)
        with tempfile.TemporaryDirectory(prefix="vace-out-") as tmp:
            path = Path(tmp) / "out.mp4"
            result = self.pipeline(spec, task_media, path, on_progress=progress)
            timings = result.effective.timings
            with timings.timed("store") if timings else contextlib.nullcontext():
                key = self._upload(claim, path, progress)
        return Stored(key=key, result=result)

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
