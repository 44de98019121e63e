"""One module per DashScope function, each turning a TaskSpec into `VaceInputs`.

Import-light on purpose (PIL, numpy and OpenCV only, never torch/diffusers): the API process
imports it.
"""

from __future__ import annotations

from vace_server.annotators.base import AnnotatorSet
from vace_server.media.clip import MediaSource
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import ReferenceRole, TaskSpec, VaceFunction

from . import (
    image_reference,
    video_edit,
    video_extension,
    video_outpainting,
    video_repainting,
)

__all__ = ["MediaSource", "ModelProfile", "VaceInputs", "build_inputs"]


def build_inputs(
    spec: TaskSpec,
    media: MediaSource,
    profile: ModelProfile,
    *,
    annotators: AnnotatorSet,
    edit_reference_role: ReferenceRole = ReferenceRole.SUBJECT,
) -> VaceInputs:
    """Dispatches on `spec.function`.

    `edit_reference_role`: how `video_edit` uses its single reference (settings
    `edit_reference_role`: `obj` cut out, or `bg` kept).
    Returns: validated VaceInputs. Raises: whatever the function module raises (ServiceError
    subclasses; ValueError for inputs that would run misaligned).
    """
    match spec.function:
        case VaceFunction.IMAGE_REFERENCE:
            return image_reference.build(spec, media, profile, annotators.segmenter.cut_out)
        case VaceFunction.VIDEO_REPAINTING:
            return video_repainting.build(spec, media, profile, annotators)
        case VaceFunction.VIDEO_EDIT:
            return video_edit.build(spec, media, profile, annotators, edit_reference_role)
        case VaceFunction.VIDEO_EXTENSION:
            return video_extension.build(spec, media, profile, annotators)
        case VaceFunction.VIDEO_OUTPAINTING:
            return video_outpainting.build(spec, media, profile)
