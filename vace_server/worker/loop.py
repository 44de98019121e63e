"""The worker loop: claim → fetch media → build inputs → run → encode → store → finish.

The same loop runs in the embedded child process, in `vace-server worker`, and (later) in
Ray actors. It owns no state transitions itself: every transition is a TaskStore call.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vace_server.annotators.base import AnnotatorSet
from vace_server.engine.loader import LoadedModel
from vace_server.engine.prompt_rewrite import PromptRewriter
from vace_server.engine.runner import free_memory
from vace_server.errors import AlgoError, ServiceError, UploadError
from vace_server.functions.base import MediaSource, VaceInputs
from vace_server.logging_setup import task_id_var
from vace_server.media.encode import encode_mp4
from vace_server.media.images import media_for_task
from vace_server.settings import Settings
from vace_server.storage.base import Storage
from vace_server.tasks.store import Claim, TaskStore
from vace_server.worker.heartbeat import Heartbeat
from vace_server.worker.produce import produce_video
from vace_server.worker.progress import Progress, StagedMedia, TaskCanceled

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

    def run_forever(self, should_stop: Callable[[], bool]) -> None:
        while not should_stop():
            if not self.run_once():
                self.store.wait_for_work(self.settings.poll_seconds)

    def run_once(self) -> bool:
        """Claims and processes one task. Returns False when the queue was empty."""
        claim = self.store.claim(self.worker_id)
        if claim is None:
            return False
        token = task_id_var.set(claim.task.id)
        try:
            log.info("task %s claimed (attempt %d)", claim.task.id, claim.attempt)
            with Heartbeat(self.store, claim, self.settings.heartbeat_seconds) as beat:
                progress = Progress(self.store, claim, beat.canceled)
                self._process(claim, progress)
        finally:
            task_id_var.reset(token)
        return True

    def _process(self, claim: Claim, progress: Progress) -> None:
        started = time.monotonic()
        try:
            produced = self._produce(claim, progress)
        except TaskCanceled:
            self._stop_canceled(claim)
            return
        except ServiceError as err:
            log.warning("task %s failed: %s %s", claim.task.id, err.code, err.message)
            self.store.fail(claim, code=err.code, message=err.message)
            return
        except Exception:
            log.exception("task %s crashed in the algorithm", claim.task.id)
            self.store.fail(claim, code=AlgoError.code, message=AlgoError.default_message)
            return
        if not self.store.succeed(
            claim,
            output_key=produced.output_key,
            output_seconds=produced.output_seconds,
            actual_prompt=produced.actual_prompt,
            effective=produced.effective,
        ):
            self.storage.delete(produced.output_key)
            if self.store.cancel_requested(claim):
                self._stop_canceled(claim)  # the cancel request arrived during the upload
            else:
                log.warning(
                    "task %s finished after losing its claim; result dropped", claim.task.id
                )
            return
        log.info("task %s succeeded in %.1fs", claim.task.id, time.monotonic() - started)

    def _stop_canceled(self, claim: Claim) -> None:
        free_memory(self.model)
        if self.store.finish_canceled(claim):
            log.info("task %s canceled", claim.task.id)

    def _produce(self, claim: Claim, progress: Progress) -> Produced:
        spec = claim.task.spec
        task_media = media_for_task(self.media, claim.task.account, spec.model_name)
        produced = produce_video(
            spec,
            StagedMedia(task_media, progress),
            model=self.model,
            annotators=self.annotators,
            settings=self.settings,
            progress=progress,
            rewriter=self.rewriter,
        )
        video = produced.video
        key = self._store_video(claim, video, progress)
        return Produced(
            output_key=key,
            output_seconds=len(video) / self.settings.output_fps,
            actual_prompt=produced.prompt if spec.prompt_extend else None,
            effective=self._effective(produced.inputs, spec.seed, len(video), progress.step_times),
        )

    def _store_video(self, claim: Claim, video: Any, progress: Progress) -> str:
        day = datetime.now(tz=UTC).strftime("%Y-%m-%d")
        key = f"{day}/{claim.task.id}-{secrets.token_urlsafe(24)}.mp4"
        with tempfile.TemporaryDirectory(prefix="vace-out-") as tmp:
            path = Path(tmp) / "out.mp4"
            encode_mp4(video, self.settings.output_fps, path)
            progress.stage("uploading")
            try:
                self.storage.put_file(key, path)
            except Exception as exc:
                log.exception("could not store the result of task %s", claim.task.id)
                raise UploadError() from exc
        return key

    def _effective(
        self, inputs: VaceInputs, seed: int, out_frames: int, step_times: list[float]
    ) -> dict[str, Any]:
        return {
            "mean_step_seconds": round(sum(step_times) / len(step_times), 4)
            if step_times
            else None,
            "model": self.model.name,
            "generation_size": [inputs.width, inputs.height],
            "generation_frames": inputs.num_frames,
            "generation_fps": self.model.profile.fps,
            "output_size": list(inputs.output_size),
            "output_frames": out_frames,
            "output_fps": self.settings.output_fps,
            "seed": seed,
            "steps": self.model.num_inference_steps,
            "guidance_scale": self.model.guidance_scale,
        }
