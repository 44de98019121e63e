"""One task, start to finish, shared by the worker loop and `vace-server generate`:
TaskSpec + media → model inputs → prompt → denoised frames → delivered frames → MP4.

Around it, each caller keeps what differs: where media come from, loading the model, where
progress goes (the store or a console), and what happens to the MP4 (the worker stores it and
finishes the task; the CLI leaves it at `--out`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vace_server.annotators.base import AnnotatorSet
from vace_server.engine.loader import LoadedModel
from vace_server.engine.prompt_rewrite import PromptRewriter, extend_prompt
from vace_server.engine.runner import generate
from vace_server.errors import AlgoError, ServiceError
from vace_server.functions import build_inputs
from vace_server.media.clip import MediaSource
from vace_server.media.encode import encode_mp4
from vace_server.media.output import render_output
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings
from vace_server.tasks.progress import ProgressTracker, Stage
from vace_server.tasks.spec import ReferenceRole, TaskSpec
from vace_server.worker.progress import ProgressHook, StagedMedia, TaskCanceled
from vace_server.worker.task_model import model_for_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Effective:
    """What a task actually ran with, recorded on the task (`effective`) and printed by the
    CLI: sizes, frame counts and rates of the generation and of the delivered video, and the
    engine settings."""

    mean_step_seconds: float | None
    model: str
    generation_size: tuple[int, int]  # (width, height)
    generation_frames: int
    generation_fps: int
    output_size: tuple[int, int]  # (width, height)
    output_frames: int
    output_fps: int
    seed: int
    steps: int
    guidance_scale: float
    flow_shift: float

    def to_json(self) -> dict[str, Any]:
        """The stored form (sizes as lists, the key order of the stored JSON)."""
        return {
            "mean_step_seconds": self.mean_step_seconds,
            "model": self.model,
            "generation_size": list(self.generation_size),
            "generation_frames": self.generation_frames,
            "generation_fps": self.generation_fps,
            "output_size": list(self.output_size),
            "output_frames": self.output_frames,
            "output_fps": self.output_fps,
            "seed": self.seed,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "flow_shift": self.flow_shift,
        }


@dataclass(frozen=True)
class PipelineResult:
    """The MP4 one run wrote, and how it was made."""

    out: Path  # the MP4 (the worker's is a temporary file, removed once stored)
    frames: int  # delivered frames
    width: int
    height: int
    fps: int
    prompt: str  # the prompt generated with (after prompt extension)
    actual_prompt: str | None  # what the query reports: the prompt used, when extension was on
    effective: Effective

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


class Pipeline(Protocol):
    """What the worker loop runs a task with (a fake in the loop's unit tests)."""

    def __call__(
        self, spec: TaskSpec, media: MediaSource, out: Path, *, on_progress: ProgressHook
    ) -> PipelineResult: ...


def algo_failure(exc: Exception) -> ServiceError:
    """The error a task fails with when its run raised `exc`: a ServiceError as it is (the
    media and function modules' typed errors), anything else the algorithm's InternalError."""
    if isinstance(exc, ServiceError):
        return exc
    log.error("the task's run crashed", exc_info=exc)  # the task id is in the logging context
    failure = AlgoError()
    failure.__cause__ = exc
    return failure


class TaskPipeline:
    """The loaded model, annotators and settings, ready to run tasks one at a time."""

    def __init__(
        self,
        *,
        model: LoadedModel,
        annotators: AnnotatorSet,
        settings: Settings,
        rewriter: PromptRewriter | None = None,
        write_failure: Callable[[Path, Exception], ServiceError] | None = None,
        denoise: Callable[..., np.ndarray] = generate,
    ) -> None:
        self.model = model
        self.annotators = annotators
        self.settings = settings
        self.rewriter = rewriter
        # The error for an MP4 that cannot be written to `out` (the CLI's own file names it);
        # by default a crash like any other.
        self.write_failure = write_failure
        # `engine.runner.generate`, or a multi-GPU group's rank 0 (worker/group.py), which
        # runs the same call on every rank of its group.
        self.denoise = denoise

    def __call__(
        self, spec: TaskSpec, media: MediaSource, out: Path, *, on_progress: ProgressHook
    ) -> PipelineResult:
        """Runs `spec` and writes the delivered video to `out`.

        Raises: ServiceError (the media and function modules' typed errors, AlgoError for any
        other crash, `write_failure`'s error); whatever `on_progress` raises (TaskCanceled)."""
        try:
            return self._run(spec, media, out, on_progress)
        except (ServiceError, TaskCanceled):
            raise
        except Exception as exc:
            raise algo_failure(exc) from exc

    def _run(
        self, spec: TaskSpec, media: MediaSource, out: Path, on_progress: ProgressHook
    ) -> PipelineResult:
        settings = self.settings
        tracker = ProgressTracker()

        # 1. The model as this task was accepted under (frames, fps, steps, guidance, shift)
        model = model_for_task(self.model, spec.engine)

        # 2. Fetch and preprocess the inputs (media reads report "fetching")
        on_progress(tracker.stage(Stage.PREPROCESSING))
        inputs = build_inputs(
            spec,
            StagedMedia(media, tracker, on_progress),
            model.profile,
            annotators=self.annotators,
            edit_reference_role=ReferenceRole(settings.annotators.edit_reference_role),
        )

        # 3. Prompt (extended when asked)
        prompt = spec.prompt
        if spec.prompt_extend:
            prompt = extend_prompt(self.rewriter, spec.prompt, function=spec.function.value)

        # 4. Denoise: the step callback reports progress and is where a cancel stops the run
        on_progress(tracker.stage(Stage.DENOISING))
        frames = self.denoise(
            model,
            inputs,
            prompt=prompt,
            negative_prompt=spec.negative_prompt or settings.engine.negative_prompt,
            seed=spec.seed,
            on_step=lambda done, total: on_progress(tracker.step(done, total)),
        )

        # 5. Deliver frames: retimed, resized, watermarked
        on_progress(tracker.stage(Stage.ENCODING))
        video = render_output(
            frames,
            size=inputs.output_size,
            seconds=inputs.output_seconds,
            fps=settings.engine.output_fps,
            watermark=spec.watermark,
            font_path=settings.media.watermark_font,
        )

        # 6. Encode the video
        self._encode(video, out)

        return PipelineResult(
            out=out,
            frames=len(video),
            width=int(video.shape[2]),
            height=int(video.shape[1]),
            fps=settings.engine.output_fps,
            prompt=prompt,
            actual_prompt=prompt if spec.prompt_extend else None,
            effective=self._effective(model, inputs, spec.seed, len(video), tracker),
        )

    def _encode(self, video: np.ndarray, out: Path) -> None:
        try:
            encode_mp4(video, self.settings.engine.output_fps, out)
        except Exception as exc:
            if self.write_failure is None:
                raise
            raise self.write_failure(out, exc) from exc

    def _effective(
        self,
        model: LoadedModel,
        inputs: VaceInputs,
        seed: int,
        out_frames: int,
        tracker: ProgressTracker,
    ) -> Effective:
        mean = tracker.mean_step_seconds
        return Effective(
            mean_step_seconds=None if mean is None else round(mean, 4),
            model=model.name,
            generation_size=(inputs.width, inputs.height),
            generation_frames=inputs.num_frames,
            generation_fps=model.profile.fps,
            output_size=(inputs.output_size[0], inputs.output_size[1]),
            output_frames=out_frames,
            output_fps=self.settings.engine.output_fps,
            seed=seed,
            steps=model.num_inference_steps,
            guidance_scale=model.guidance_scale,
            flow_shift=model.flow_shift,
        )
