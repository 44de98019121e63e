"""The model part of one task, shared by the worker loop and `vace-server generate`:
TaskSpec + media → model inputs → prompt → denoised frames → delivered frames.

Around it, the caller keeps what differs: where media come from (and how fetching is
reported), loading the model, encoding and storing the result, finishing the task."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from vace_server.annotators.base import AnnotatorSet
from vace_server.engine.loader import LoadedModel
from vace_server.engine.prompt_rewrite import PromptRewriter, extend_prompt
from vace_server.engine.runner import generate
from vace_server.errors import AlgoError, ServiceError
from vace_server.functions import build_inputs
from vace_server.media.clip import MediaSource
from vace_server.media.output import render_output
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings
from vace_server.tasks.spec import ReferenceRole, TaskSpec
from vace_server.worker.progress import ProgressSink, TaskCanceled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProducedVideo:
    video: np.ndarray  # uint8 (N, H, W, 3): the delivered frames at settings.output_fps
    inputs: VaceInputs
    prompt: str  # the prompt generated with (after prompt extension)


def produce_video(
    spec: TaskSpec,
    media: MediaSource,
    *,
    model: LoadedModel,
    annotators: AnnotatorSet,
    settings: Settings,
    progress: ProgressSink,
    rewriter: PromptRewriter | None = None,
) -> ProducedVideo:
    """Builds the model inputs from `media` (wrap it to report fetching), extends the prompt
    when asked, generates, and renders the delivered frames (retimed, resized, watermarked).

    Returns: the delivered frames, the model inputs and the prompt used.
    Raises: ServiceError from the media and function modules; AlgoError when inference
    crashes; whatever `progress` raises (the worker's TaskCanceled); other exceptions from
    `build_inputs` unwrapped (callers fail the task with AlgoError)."""
    progress.stage("preprocessing")
    inputs = build_inputs(
        spec,
        media,
        model.profile,
        annotators=annotators,
        edit_reference_role=ReferenceRole(settings.edit_reference_role),
    )
    prompt = spec.prompt
    if spec.prompt_extend:
        prompt = extend_prompt(rewriter, spec.prompt, function=spec.function.value)
    # the step callback reports progress and is where a cancel stops the run
    progress.stage("denoising")
    try:
        frames = generate(
            model,
            inputs,
            prompt=prompt,
            negative_prompt=spec.negative_prompt or settings.negative_prompt,
            seed=spec.seed,
            on_step=progress.step,
        )
    except (ServiceError, TaskCanceled):
        raise
    except Exception as exc:
        log.exception("inference failed")  # the task id is in the logging context
        raise AlgoError() from exc
    progress.stage("encoding")
    video = render_output(
        frames,
        size=inputs.output_size,
        seconds=inputs.output_seconds,
        fps=settings.output_fps,
        watermark=spec.watermark,
        font_path=settings.watermark_font,
    )
    return ProducedVideo(video=video, inputs=inputs, prompt=prompt)
