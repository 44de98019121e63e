"""`video_repainting`: a new video that follows the input's motion or structure.

VACE control-to-video (docs/model-inputs.md §4.2): the control renderings (pose, depth, scribble)
of the input are the `video`, with no mask (the pipeline then generates everywhere);
`strength` is the context scale. An optional reference image replaces the subject
(VACE "animate anything").
"""

from __future__ import annotations

from vace_server import errors
from vace_server.annotators.base import AnnotatorSet
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import ReferenceRole, TaskSpec

from . import common

__all__ = ["CONTROL_FIELD", "REF_FIELD", "VIDEO_FIELD", "build"]

VIDEO_FIELD = InputField.VIDEO
REF_FIELD = InputField.REFERENCES
CONTROL_FIELD = InputField.CONTROL


def build(
    spec: TaskSpec, media: MediaSource, profile: ModelProfile, annotators: AnnotatorSet
) -> VaceInputs:
    """Turns a `video_repainting` task into pipeline inputs.

    Returns: VaceInputs with `video` = control renderings (no mask), `conditioning_scale` =
    strength, and at most one `obj` reference.
    Raises: errors.InvalidParameter for a spec the API should have refused; AnnotatorUnavailable
    when the control's annotator is not loaded (checked before any download);
    errors.InvalidFile (InvalidFile.Duration) for a video giving under MIN_VIDEO_FRAMES
    frames; media errors.
    Side effects: fetches the video (first 5 s) and the reference through `media`.
    """
    # 1. What the API guarantees: a video and a control condition.
    if not spec.video_url:
        raise errors.field_required(VIDEO_FIELD.mention)
    if spec.control is None:
        raise errors.field_required(CONTROL_FIELD.mention)
    # 2. The annotator first: a missing checkpoint fails before any download.
    annotator = common.annotator_or_fail(annotators, spec.control)

    # 3. The input: its first 5 s, at least a video's worth (MIN_VIDEO_FRAMES at 16 fps).
    clip = media.fetch_video(spec.video_url, VIDEO_FIELD, max_seconds=common.VIDEO_SECONDS)
    common.require_video_length(clip, VIDEO_FIELD, profile)

    # 4. Sizes: delivered at the input's resolution (<= 720P kept, larger scaled down, even);
    #    generated at that aspect within the model's area.
    output_size = common.within_720p(clip.width, clip.height)
    size = common.generation_size(*output_size, profile)

    # 5. Frames picked evenly for 16 fps playback (at most the model's frame count, 4n+1),
    #    each decoded and resized in turn; the control video is the annotator's rendering.
    _, frames = common.sample_frames(clip, profile.num_frames, profile.fps, common.covering(size))
    control = common.annotate(annotator, frames)

    # 6. Optional subject: the first reference, cut out onto white.
    references = common.single_reference(
        spec, media, REF_FIELD, ReferenceRole.SUBJECT, annotators.segmenter, size
    )

    inputs = VaceInputs(
        width=size[0],
        height=size[1],
        num_frames=len(control),
        output_size=output_size,
        output_seconds=common.clip_seconds(clip),
        video=control,
        mask=None,
        reference_images=references,
        conditioning_scale=spec.strength,
    )
    # 7. Fail here, not on the GPU, if anything is misaligned.
    inputs.validate()
    return inputs
