"""The worker loop: claim → fetch media → build inputs → run → encode → store → finish.

The same loop runs in the embedded child process, in `vace-server worker`, and in the Ray actors
of `vace-server ray-workers`. It owns no state transitions itself: every transition is a
TaskStore call.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
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
from vace_server.errors import AlgoError, ServiceError, UploadError
from vace_server.logging_setup import task_id_var
from vace_server.media.clip import MediaSource
from vace_server.media.encode import encode_mp4
from vace_server.media.images import media_for_task
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings
from vace_server.storage.base import Storage
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.bookkeeping import settle
from vace_server.worker.heartbeat import Heartbeat
from vace_server.worker.produce import produce_video
from vace_server.worker.progress import Progress, StagedMedia, TaskCanceled, TaskInterrupted
from vace_server.worker.task_model import model_for_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Produced:
    output_key: str
    output_seconds: float
    actual_prompt: str | None
    effective: dict[str, Any]


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.model = model
        self.media = media
        self.annotators = annotators
        self.rewriter = rewriter
        self.worker_id = worker_id
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
            produced = self._produce(claim, progress)
        except TaskInterrupted:
            self._requeue_interrupted(claim)
            return
        except TaskCanceled:
            self._stop_canceled(claim)
            return
        except ServiceError as err:
            code, message = err.code, err.message  # stored with its field mentions, for the API
            log.warning("task %s failed: %s %s", claim.task.id, code, err)
            self._settle(claim, "fail", lambda: self.store.fail(claim, code=code, message=message))
            return
        except Exception:
            log.exception("task %s crashed in the algorithm", claim.task.id)
            self._settle(
                claim,
                "fail",
                lambda: self.store.fail(
                    claim, code=AlgoError.code, message=AlgoError.default_message
                ),
            )
            return
        succeeded = self._settle(
            claim,
            "success",
            lambda: self.store.succeed(
                claim,
                output_key=produced.output_key,
                output_seconds=produced.output_seconds,
                actual_prompt=produced.actual_prompt,
                effective=produced.effective,
            ),
        )
        if not succeeded:
            self.storage.delete(produced.output_key)
            if self._settle(claim, "read", lambda: self.store.cancel_requested(claim)):
                self._stop_canceled(claim)  # the cancel request arrived during the upload
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

    def _produce(self, claim: Claim, progress: Progress) -> Produced:
        spec = claim.task.spec
        model = model_for_task(self.model, spec.engine)
        task_media = media_for_task(self.media, claim.task.account, spec.upload_model)
        produced = produce_video(
            spec,
            StagedMedia(task_media, progress),
            model=model,
            annotators=self.annotators,
            settings=self.settings,
            progress=progress,
            rewriter=self.rewriter,
        )
        video = produced.video
        key = self._store_video(claim, video, progress)
        return Produced(
            output_key=key,
            output_seconds=len(video) / self.settings.engine.output_fps,
            actual_prompt=produced.prompt if spec.prompt_extend else None,
            effective=self._effective(
                model, produced.inputs, spec.seed, len(video), progress.step_times
            ),
        )

    def _store_video(self, claim: Claim, video: Any, progress: Progress) -> str:
        day = datetime.now(tz=UTC).strftime("%Y-%m-%d")
        key = f"{day}/{claim.task.id}-{secrets.token_urlsafe(24)}.mp4"
        with tempfile.TemporaryDirectory(prefix="vace-out-") as tmp:
            path = Path(tmp) / "out.mp4"
            encode_mp4(video, self.settings.engine.output_fps, path)
            progress.stage("uploading")
            try:
                self.storage.put_file(key, path)
            except Exception as exc:
                log.exception("could not store the result of task %s", claim.task.id)
                raise UploadError() from exc
        return key

    def _effective(
        self,
        model: LoadedModel,
        inputs: VaceInputs,
        seed: int,
        out_frames: int,
        step_times: list[float],
    ) -> dict[str, Any]:
        return {
            "mean_step_seconds": round(sum(step_times) / len(step_times), 4)
            if step_times
            else None,
            "model": model.name,
            "generation_size": [inputs.width, inputs.height],
            "generation_frames": inputs.num_frames,
            "generation_fps": model.profile.fps,
            "output_size": list(inputs.output_size),
            "output_frames": out_frames,
            "output_fps": self.settings.engine.output_fps,
            "seed": seed,
            "steps": model.num_inference_steps,
            "guidance_scale": model.guidance_scale,
            "flow_shift": model.flow_shift,
        }
