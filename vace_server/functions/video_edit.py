"""`video_edit`: regenerate a masked region of a video, keeping the rest.

VACE inpainting (docs/model-inputs.md §4.3): the frames with the region mid-gray (or, with a
control condition, the annotator's rendering of the original frame there) are the `video`, and the
region is 255 in the `mask`. The mask comes from one image on one frame (tracked through the
clip, or fixed) or from a mask video. An optional reference fills the region
(VACE "swap anything").
"""

from __future__ import annotations

from PIL import Image

from vace_server import errors
from vace_server.annotators.base import AnnotatorSet
from vace_server.annotators.masks import expand_mask
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import MaskType, ReferenceRole, TaskSpec

from . import common

__all__ = [
    "DEFAULT_SIZE",
    "MASK_FRAME_FIELD",
    "MASK_IMAGE_FIELD",
    "MASK_VIDEO_FIELD",
    "REF_FIELD",
    "VIDEO_FIELD",
    "build",
    "mask_frame_index",
]

DEFAULT_SIZE = (1280, 720)  # default `size`, delivered exactly (docs/contract.md §5.3, §12)
VIDEO_FIELD = InputField.VIDEO
MASK_IMAGE_FIELD = InputField.MASK_IMAGE
MASK_VIDEO_FIELD = InputField.MASK_VIDEO
MASK_FRAME_FIELD = InputField.MASK_FRAME_ID
REF_FIELD = InputField.REFERENCES


def build(
    spec: TaskSpec,
    media: MediaSource,
    profile: ModelProfile,
    annotators: AnnotatorSet,
    reference_role: ReferenceRole = ReferenceRole.SUBJECT,
) -> VaceInputs:
    """Turns a `video_edit` task into pipeline inputs. `reference_role` (a server setting: the
    request has no `obj_or_bg` here): the single reference cut out (`obj`) or kept (`bg`).

    Returns: VaceInputs: `video` (region gray / control rendering), `mask` (255 region, 0 else),
    at most one reference; output exactly `size`, input length (<= 5 s).
    Raises: errors.InvalidParameter (missing fields; "The size is not match ..."; mask_frame_id
    past the video), errors.InvalidFile (InvalidFile.FPS / .Duration: mask video does not
    match; .Duration: video giving under MIN_VIDEO_FRAMES frames), AnnotatorUnavailable,
    media errors.
    Side effects: fetches through `media`.
    """
    # 1. What the API guarantees: a video and one mask (the image wins when both are given).
    if not spec.video_url:
        raise errors.field_required(VIDEO_FIELD.mention)
    if not spec.mask_image_url and not spec.mask_video_url:
        raise errors.field_required(MASK_IMAGE_FIELD.mention)
    # 2. The annotator first: a missing checkpoint fails before any download.
    annotator = common.annotator_or_fail(annotators, spec.control) if spec.control else None

    # 3. The input: first 5 s, at least a video's worth (MIN_VIDEO_FRAMES at 16 fps).
    clip = media.fetch_video(spec.video_url, VIDEO_FIELD, max_seconds=common.VIDEO_SECONDS)
    common.require_video_length(clip, VIDEO_FIELD, profile)

    # 4. Sizes: delivered exactly at `size`; generated at its aspect within the model's area.
    #    Frames picked evenly for 16 fps (<= the model's frames, 4n+1), each decoded and
    #    cover-cropped in turn; masks are cropped identically (bicubic / nearest).
    output_size = spec.size or DEFAULT_SIZE
    size = common.generation_size(*output_size, profile)
    indices, frames = common.sample_frames(
        clip, profile.num_frames, profile.fps, common.covering(size)
    )

    # 5. One binary mask per kept frame: from the image (tracked or fixed) or the mask video.
    masks = _masks(spec, media, clip, indices, frames, annotators)

    # 6. Video: the region gray, or the control rendering of the original frame there.
    gray = common.gray_canvas(size)
    fill = common.annotate(annotator, frames) if annotator else [gray] * len(frames)
    video = [Image.composite(c, f, m) for c, f, m in zip(fill, frames, masks, strict=True)]

    # 7. Optional reference, its role a server setting.
    refs = common.single_reference(
        spec, media, REF_FIELD, reference_role, annotators.segmenter, size
    )
    inputs = VaceInputs(
        width=size[0],
        height=size[1],
        num_frames=len(video),
        output_size=output_size,
        output_seconds=common.clip_seconds(clip),
        video=video,
        mask=masks,
        reference_images=refs,
    )
    # 8. Fail here, not on the GPU, if anything is misaligned.
    inputs.validate()
    return inputs


def mask_frame_index(mask_frame_id: int, source_count: int, indices: list[int]) -> int:
    """1-based `mask_frame_id` (0 = the first frame too) -> index in the sampled frame list.

    The id names source frame id-1; the mask goes to the sampled frame nearest to it in time.
    Raises: errors.InvalidParameter naming the mask frame id when it is past the kept video.
    """
    source_index = max(mask_frame_id, 1) - 1
    if source_index >= source_count:
        raise errors.InvalidParameter(
            f"{MASK_FRAME_FIELD.mention} {mask_frame_id} is larger than the number of frames in "
            f"{VIDEO_FIELD.mention} ({source_count} in its first {common.VIDEO_SECONDS:g} s)."
        )
    return min(range(len(indices)), key=lambda k: (abs(indices[k] - source_index), k))


def _masks(
    spec: TaskSpec,
    media: MediaSource,
    clip: VideoClip,
    indices: list[int],
    frames: list[Image.Image],
    annotators: AnnotatorSet,
) -> list[Image.Image]:
    """The mask image when given (it wins over a mask video), else the mask video."""
    if spec.mask_image_url:
        return _masks_from_image(
            spec.mask_image_url, spec, media, clip, indices, frames, annotators
        )
    return _masks_from_video(spec.mask_video_url, media, clip, indices, frames[0].size)


def _masks_from_image(
    url: str,
    spec: TaskSpec,
    media: MediaSource,
    clip: VideoClip,
    indices: list[int],
    frames: list[Image.Image],
    annotators: AnnotatorSet,
) -> list[Image.Image]:
    """mask_image_url -> per-frame masks: tracked from its frame and expanded, or fixed."""
    # a. Frame id before download: an id past the video fails without fetching the mask.
    start = mask_frame_index(spec.mask_frame_id, clip.frame_count, indices)
    # b. The mask must have the video's own resolution; never resized to fit.
    mask = media.fetch_mask_image(url, MASK_IMAGE_FIELD)
    if mask.size != (clip.width, clip.height):
        raise common.size_not_match(
            MASK_IMAGE_FIELD, mask.size, VIDEO_FIELD, (clip.width, clip.height)
        )
    # c. Every pixel > 0 is "generate" (VACE's inpainting annotator), cropped like the frames;
    #    the tracker is seeded with this same mask.
    mask = common.cover_mask(mask, frames[0].size, common.MASK_IMAGE_THRESHOLD)
    if spec.mask_type is MaskType.FIXED:
        return [mask] * len(frames)
    # d. Tracking: forward and backward from frame `start`, then the deterministic expansion.
    tracked = annotators.tracker.track(frames, mask, start=start)
    if len(tracked) != len(frames):
        raise ValueError(f"tracker returned {len(tracked)} masks for {len(frames)} frames")
    return [expand_mask(m, spec.expand_mode.value, spec.expand_ratio) for m in tracked]


def _masks_from_video(
    url: str | None, media: MediaSource, clip: VideoClip, indices: list[int], size: tuple[int, int]
) -> list[Image.Image]:
    """mask_video_url -> per-frame masks, used as given (no tracking, no expansion), at the
    model's own threshold (>= 128), as VACE hands a mask video straight to its model."""
    if not url:
        raise errors.field_required(MASK_IMAGE_FIELD.mention)
    masks = media.fetch_video(url, MASK_VIDEO_FIELD, max_seconds=common.VIDEO_SECONDS)
    if (masks.width, masks.height) != (clip.width, clip.height):
        raise common.size_not_match(
            MASK_VIDEO_FIELD, (masks.width, masks.height), VIDEO_FIELD, (clip.width, clip.height)
        )
    if not common.same_fps(masks.fps, clip.fps):
        raise errors.InvalidFile(
            f"The frame rate of {MASK_VIDEO_FIELD.mention} ({masks.fps:g} fps) must equal "
            f"that of {VIDEO_FIELD.mention} ({clip.fps:g} fps).",
            code="InvalidFile.FPS",
        )
    if masks.frame_count != clip.frame_count:
        raise errors.InvalidFile(
            f"The length of {MASK_VIDEO_FIELD.mention} ({masks.frame_count} frames) must equal "
            f"that of {VIDEO_FIELD.mention} ({clip.frame_count} frames, first "
            f"{common.VIDEO_SECONDS:g} s).",
            code="InvalidFile.Duration",
        )
    # Same source indices and crop as the video frames; only those frames are decoded.
    return masks.read(indices, lambda mask: common.cover_mask(mask, size))
