"""One task, start to finish, shared by the worker loop and `vace-server generate`:
TaskSpec + media → model inputs → prompt → denoised frames → delivered frames → MP4.

Around it, each caller keeps what differs: where media come from, loading the model, where
progress goes (the store or a console), and what happens to the MP4 (the worker stores it and
finishes the task; the CLI leaves it at `--out`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from vace_server.media.output import DeliveredVideo, render_video
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings
from vace_server.tasks.progress import ProgressTracker, Stage
from vace_server.tasks.spec import ReferenceRole, TaskSpec
from vace_server.worker.progress import ProgressHook, StagedMedia, TaskCanceled
from vace_server.worker.task_model import model_for_task
from vace_server.worker.timings import PIPELINE_CALL_STAGES, StageTimings

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
    preset: str = ""  # VACE_PRESET of the weights that ran ("" for a model loaded without one)
    # Seconds per stage; the worker adds `store` after the pipeline returned, so it is read
    # when the record is stored (`worker.timings`).
    timings: StageTimings | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The stored form (sizes as lists, the key order of the stored JSON; `stage_ms` once
        timed)."""
        stored: dict[str, Any] = {
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
            "preset": self.preset,
        }
        if self.timings is not None:
            stored["stage_ms"] = self.timings.to_json()
        return stored


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


@dataclass(frozen=True)
class Prepared:
    """A task after steps 1-3 (its model settings, inputs and prompt): CPU work only, so a
    pipelined worker builds the next task's while the model runs another."""

    spec: TaskSpec
    model: LoadedModel
    inputs: VaceInputs
    prompt: str
    tracker: ProgressTracker
    timings: StageTimings = field(default_factory=StageTimings)  # the task's, all steps

    @property
    def nbytes(self) -> int:
        """The bytes of the input frames and references (what a look-ahead task holds)."""
        images = [
            *(self.inputs.video or ()),
            *(self.inputs.mask or ()),
            *(self.inputs.reference_images or ()),
        ]
        return sum(im.width * im.height * len(im.getbands()) for im in images)


@dataclass(frozen=True)
class Denoised:
    """A task after step 4: the generated frames, for delivery off the model's thread."""

    prepared: Prepared
    frames: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.frames.nbytes) + self.prepared.nbytes


class Pipeline(Protocol):
    """What the worker loop runs a task with, in three steps so that each can run on its own
    thread: `prepare` (fetch + preprocess, CPU), `denoise` (the model), `deliver` (frames →
    MP4, CPU). A fake in the loop's unit tests."""

    def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Any: ...

    def denoise(self, prepared: Any, *, on_progress: ProgressHook) -> Any: ...

    def deliver(self, denoised: Any, out: Path, *, on_progress: ProgressHook) -> PipelineResult: ...


def algo_failure(exc: Exception) -> ServiceError:
    """The error a task fails with when its run raised `exc`: a ServiceError as it is (the
    media and function modules' typed errors), anything else the algorithm's InternalError."""
    if isinstance(exc, ServiceError):
        return exc
    log.error("the task's run crashed", exc_info=exc)  # the task id is in the logging context
    failure = AlgoError()
    failure.__cause__ = exc
    return failure


@contextmanager
def _mapped_errors() -> Iterator[None]:
    """A step's errors as the task fails with them: ServiceError and TaskCanceled as they are,
    anything else `algo_failure`."""
    try:
        yield
    except (ServiceError, TaskCanceled):
        raise
    except Exception as exc:
        raise algo_failure(exc) from exc


class TaskPipeline:
    """The loaded model, annotators and settings, ready to run tasks: whole (`__call__`) or
    step by step (`prepare`, `denoise`, `deliver`)."""

    def __init__(
        self,
        *,
        model: LoadedModel,
        annotators: AnnotatorSet,
        settings: Settings,
        rewriter: PromptRewriter | None = None,
        write_failure: Callable[[Path, Exception], ServiceError] | None = None,
        denoiser: Callable[..., np.ndarray] = generate,
    ) -> None:
        self.model = model
        self.annotators = annotators
        self.settings = settings
        self.rewriter = rewriter
        # The error for an MP4 that cannot be written to `out` (the CLI's own file names it);
        # by default a crash like any other.
        self.write_failure = write_failure
        # Step 4's model call: `engine.runner.generate`, or a multi-GPU group's rank 0
        # (worker/group.py `Leader.denoise`), which runs the same call on every rank.
        self.denoiser = denoiser

    def __call__(
        self, spec: TaskSpec, media: MediaSource, out: Path, *, on_progress: ProgressHook
    ) -> PipelineResult:
        """Runs `spec` and writes the delivered video to `out` (the three steps in a row).

        Raises: ServiceError (the media and function modules' typed errors, AlgoError for any
        other crash, `write_failure`'s error); whatever `on_progress` raises (TaskCanceled)."""
        prepared = self.prepare(spec, media, on_progress=on_progress)
        denoised = self.denoise(prepared, on_progress=on_progress)
        return self.deliver(denoised, out, on_progress=on_progress)

    def prepare(self, spec: TaskSpec, media: MediaSource, *, on_progress: ProgressHook) -> Prepared:
        """Steps 1-3. Raises as `__call__` does."""
        with _mapped_errors():
            return self._prepare(spec, media, on_progress)

    def denoise(self, prepared: Prepared, *, on_progress: ProgressHook) -> Denoised:
        """Step 4, on the model. Raises as `__call__` does."""
        with _mapped_errors():
            return self._denoise(prepared, on_progress)

    def deliver(
        self, denoised: Denoised, out: Path, *, on_progress: ProgressHook
    ) -> PipelineResult:
        """Steps 5-6: the delivered video written to `out`. Raises as `__call__` does."""
        with _mapped_errors():
            return self._deliver(denoised, out, on_progress)

    def _prepare(self, spec: TaskSpec, media: MediaSource, on_progress: ProgressHook) -> Prepared:
        tracker = ProgressTracker()

        # 1. The model as this task was accepted under (frames, fps, steps, guidance, shift)
        model = model_for_task(self.model, spec.engine)

        # 2. Fetch and preprocess the inputs (media reads report "fetching")
        on_progress(tracker.stage(Stage.PREPROCESSING))
        timings = StageTimings()
        started = time.perf_counter()
        inputs = build_inputs(
            spec,
            StagedMedia(media, tracker, on_progress, timings),
            model.profile,
            annotators=self.annotators,
            edit_reference_role=ReferenceRole(self.settings.annotators.edit_reference_role),
        )

        # 3. Prompt (extended when asked)
        prompt = spec.prompt
        if spec.prompt_extend:
            prompt = extend_prompt(self.rewriter, spec.prompt, function=spec.function.value)
        # preprocess: the input building and the prompt, less the reads timed as fetch
        timings.add("preprocess", time.perf_counter() - started - timings.seconds("fetch"))
        return Prepared(
            spec=spec, model=model, inputs=inputs, prompt=prompt, tracker=tracker, timings=timings
        )

    def _denoise(self, prepared: Prepared, on_progress: ProgressHook) -> Denoised:
        spec, tracker, timings = prepared.spec, prepared.tracker, prepared.timings

        # 4. Denoise: the step callback reports progress and is where a cancel stops the run
        on_progress(tracker.stage(Stage.DENOISING))
        started = time.perf_counter()
        frames = self.denoiser(
            prepared.model,
            prepared.inputs,
            prompt=prepared.prompt,
            negative_prompt=spec.negative_prompt or self.settings.engine.negative_prompt,
            seed=spec.seed,
            on_step=lambda done, total: on_progress(tracker.step(done, total)),
            on_part=timings.add,
        )
        parts = sum(timings.seconds(s) for s in PIPELINE_CALL_STAGES)
        timings.add("denoise", time.perf_counter() - started - parts)
        return Denoised(prepared=prepared, frames=frames)

    def _deliver(self, denoised: Denoised, out: Path, on_progress: ProgressHook) -> PipelineResult:
        settings = self.settings
        prepared = denoised.prepared
        spec, inputs, timings = prepared.spec, prepared.inputs, prepared.timings

        # 5. Deliver frames: retimed, resized, watermarked; 6. encode the video
        on_progress(prepared.tracker.stage(Stage.ENCODING))
        with timings.timed("encode_video"):
            video = render_video(
                denoised.frames,
                size=inputs.output_size,
                seconds=inputs.output_seconds,
                fps=settings.engine.output_fps,
                watermark=spec.watermark,
                font_path=settings.media.watermark_font,
            )
            self._encode(video, out)

        return PipelineResult(
            out=out,
            frames=len(video),
            width=video.width,
            height=video.height,
            fps=settings.engine.output_fps,
            prompt=prepared.prompt,
            actual_prompt=prepared.prompt if spec.prompt_extend else None,
            effective=self._effective(
                prepared.model, inputs, spec.seed, len(video), prepared.tracker, timings
            ),
        )

    def _encode(self, video: DeliveredVideo, out: Path) -> None:
        try:
            engine = self.settings.engine
            encode_mp4(
                video.frames,
                engine.output_fps,
                out,
                order=video.order,
                preset=engine.output_x264_preset,
                crf=engine.output_crf,
            )
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
        timings: StageTimings,
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
            preset=model.preset.name if model.preset is not None else "",
            timings=timings,
        )
