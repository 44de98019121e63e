"""`video_extension`: a 5 s video around given first/last frames and clips.

VACE frame/clip reference (docs/model-inputs.md §4.4): the given material is placed at the
start (first frame, first clip) and the end (last clip, last frame) of exactly `num_frames` frames
with mask 0 (keep); the gap between is mid-gray with mask 255 (generate) -- or, with a motion
reference video and a control condition, the control renderings of that video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from vace_server import errors
from vace_server.annotators.base import AnnotatorSet, FrameAnnotator
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource, VideoClip
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import TaskSpec

from . import common

__all__ = [
    "CLIP_SECONDS",
    "CONTROL_FIELD",
    "FIRST_CLIP_FIELD",
    "FIRST_FRAME_FIELD",
    "LAST_CLIP_FIELD",
    "LAST_FRAME_FIELD",
    "VIDEO_FIELD",
    "build",
]

CLIP_SECONDS = 3.0  # each clip cut to its first 3 s; both at most 3 s in all (docs/contract.md §4)
FIRST_FRAME_FIELD = InputField.FIRST_FRAME
LAST_FRAME_FIELD = InputField.LAST_FRAME
FIRST_CLIP_FIELD = InputField.FIRST_CLIP
LAST_CLIP_FIELD = InputField.LAST_CLIP
VIDEO_FIELD = InputField.VIDEO
CONTROL_FIELD = InputField.CONTROL


@dataclass(frozen=True)
class _Given:
    """The fetched material, each entry None when not requested."""

    first_frame: Image.Image | None
    last_frame: Image.Image | None
    first_clip: VideoClip | None
    last_clip: VideoClip | None

    def sizes(self) -> list[tuple[InputField, tuple[int, int]]]:
        """(field, (width, height)) of each given input, in the reference-size order."""
        out: list[tuple[InputField, tuple[int, int]]] = []
        for field, clip in ((FIRST_CLIP_FIELD, self.first_clip), (LAST_CLIP_FIELD, self.last_clip)):
            if clip is not None:
                out.append((field, (clip.width, clip.height)))
        for field, image in (
            (FIRST_FRAME_FIELD, self.first_frame),
            (LAST_FRAME_FIELD, self.last_frame),
        ):
            if image is not None:
                out.append((field, image.size))
        return out

    def clips(self) -> list[tuple[InputField, VideoClip]]:
        return [
            (field, clip)
            for field, clip in (
                (FIRST_CLIP_FIELD, self.first_clip),
                (LAST_CLIP_FIELD, self.last_clip),
            )
            if clip is not None
        ]


def build(
    spec: TaskSpec, media: MediaSource, profile: ModelProfile, annotators: AnnotatorSet
) -> VaceInputs:
    """Turns a `video_extension` task into pipeline inputs.

    Returns: VaceInputs of exactly `profile.num_frames` frames: head (first frame, first clip),
    gap, tail (last clip, last frame); mask 0 on head and tail, 255 on the gap; output 5 s at
    the reference input's resolution (<= 720P rule).
    Raises: errors.InvalidParameter (missing fields; "The size is not match ..." for a motion
    reference), errors.InvalidFile (InvalidFile.FPS: clips / motion reference frame rates;
    InvalidFile.Duration: clips over 3 s together, nothing left to generate, a motion
    reference giving under MIN_VIDEO_FRAMES frames),
    AnnotatorUnavailable, media errors. Side effects: fetches every given URL via `media`.
    """
    # 1. What the API guarantees: some material; a control condition with a motion reference.
    if not (
        spec.first_frame_url or spec.last_frame_url or spec.first_clip_url or spec.last_clip_url
    ):
        raise errors.field_required(FIRST_CLIP_FIELD.mention)
    # 2. The annotator first: a missing checkpoint fails before any download.
    annotator = None
    if spec.video_url:
        if spec.control is None:
            raise errors.field_required(CONTROL_FIELD.mention)
        annotator = common.annotator_or_fail(annotators, spec.control)

    # 3. Material: clips first (cut to 3 s, checked together), then the frames.
    given = _fetch(spec, media)

    # 4. Sizes: the first present of first clip, last clip, first frame, last frame sets the
    #    delivered size (<= 720P rule); the model runs at its aspect within its area.
    _, reference_size = given.sizes()[0]
    output_size = common.within_720p(*reference_size)
    size = common.generation_size(*output_size, profile)

    # 5. Head and tail at the generation size; clips at 16 fps. Material of another size than
    #    the reference is first fitted onto white at the reference's size (VACE's
    #    `align_frames`), then every frame is cover-resized as the pipeline would.
    n = profile.num_frames
    head, tail = _head_and_tail(given, n, profile.fps, size, reference_size)
    gap = n - len(head) - len(tail)

    # 6. The gap: gray, or the motion reference's control renderings at the same positions.
    fill = [common.gray_canvas(size)] * gap
    if spec.video_url and annotator is not None:
        clip = media.fetch_video(spec.video_url, VIDEO_FIELD, max_seconds=common.VIDEO_SECONDS)
        common.require_video_length(clip, VIDEO_FIELD, profile)
        fill = _motion(clip, given, annotator, n, size, start=len(head), count=gap)

    # 7. Masks: keep the given material, generate the gap; exactly n frames (never resampled).
    keep, generate = common.flat_mask(size, 0), common.flat_mask(size, 255)
    inputs = VaceInputs(
        width=size[0],
        height=size[1],
        num_frames=n,
        output_size=output_size,
        output_seconds=(n - 1) / profile.fps,
        video=head + fill + tail,
        mask=[keep] * len(head) + [generate] * gap + [keep] * len(tail),
    )
    # 8. Fail here, not on the GPU, if anything is misaligned.
    inputs.validate()
    return inputs


def _fetch(spec: TaskSpec, media: MediaSource) -> _Given:
    """Fetches the material; both clips must share a frame rate and last <= 3 s together."""
    first_clip = last_clip = None
    if spec.first_clip_url:
        first_clip = media.fetch_video(
            spec.first_clip_url, FIRST_CLIP_FIELD, max_seconds=CLIP_SECONDS
        )
    if spec.last_clip_url:
        last_clip = media.fetch_video(spec.last_clip_url, LAST_CLIP_FIELD, max_seconds=CLIP_SECONDS)
    if first_clip is not None and last_clip is not None:
        if not common.same_fps(first_clip.fps, last_clip.fps):
            raise errors.InvalidFile(
                f"{FIRST_CLIP_FIELD.mention} ({first_clip.fps:g} fps) and "
                f"{LAST_CLIP_FIELD.mention} "
                f"({last_clip.fps:g} fps) must have the same frame rate.",
                code="InvalidFile.FPS",
            )
        total = common.clip_seconds(first_clip, CLIP_SECONDS) + common.clip_seconds(
            last_clip, CLIP_SECONDS
        )
        if total > CLIP_SECONDS + 1e-6:
            raise errors.InvalidFile(
                f"{FIRST_CLIP_FIELD.mention} and {LAST_CLIP_FIELD.mention} last {total:.2f} s "
                "together; "
                f"together they must last at most {CLIP_SECONDS:g} s.",
                code="InvalidFile.Duration",
            )
    first_frame = last_frame = None
    if spec.first_frame_url:
        first_frame = media.fetch_image(spec.first_frame_url, FIRST_FRAME_FIELD)
    if spec.last_frame_url:
        last_frame = media.fetch_image(spec.last_frame_url, LAST_FRAME_FIELD)
    return _Given(first_frame, last_frame, first_clip, last_clip)


def _head_and_tail(
    given: _Given, n: int, fps: int, size: tuple[int, int], reference: tuple[int, int]
) -> tuple[list[Image.Image], list[Image.Image]]:
    """[first frame, first clip...] and [last clip..., last frame] at `size`: each frame fitted
    onto white at the `reference` size when it has another size, then cover-resized.

    The counts are checked before any clip frame is decoded.
    Raises: errors.InvalidFile (InvalidFile.Duration) when they leave no frame to generate.
    """
    first_indices = _clip_indices(given.first_clip, n, fps)
    last_indices = _clip_indices(given.last_clip, n, fps)
    given_count = len(first_indices) + len(last_indices)
    given_count += (given.first_frame is not None) + (given.last_frame is not None)
    if given_count >= n:
        fields = ", ".join(field.mention for field, _ in given.sizes())
        raise errors.InvalidFile(
            f"The given frames and clips ({fields}) make {given_count} frames, which "
            f"leaves none of the {n} output frames to generate.",
            code="InvalidFile.Duration",
        )

    def prepare(frame: Image.Image) -> Image.Image:
        return common.cover(common.fit_on_white(frame, reference), size)

    head = given.first_clip.read(first_indices, prepare) if given.first_clip else []
    if given.first_frame is not None:
        head.insert(0, prepare(given.first_frame))
    tail = given.last_clip.read(last_indices, prepare) if given.last_clip else []
    if given.last_frame is not None:
        tail.append(prepare(given.last_frame))
    return head, tail


def _clip_indices(clip: VideoClip | None, max_frames: int, fps: int) -> list[int]:
    """A clip's frames for playback at `fps` (not trimmed to 4n+1: the total is fixed)."""
    if clip is None:
        return []
    return common.sample_indices(clip.frame_count, clip.fps, max_frames, fps, snap=False)


def _check_motion(clip: VideoClip, given: _Given) -> None:
    """The motion reference must have the clips' frame rate and every given input's size."""
    for field, other in given.clips():
        if not common.same_fps(clip.fps, other.fps):
            raise errors.InvalidFile(
                f"{VIDEO_FIELD.mention} ({clip.fps:g} fps) must have the frame rate of "
                f"{field.mention} "
                f"({other.fps:g} fps).",
                code="InvalidFile.FPS",
            )
    for field, size in given.sizes():
        if (clip.width, clip.height) != size:
            raise common.size_not_match(VIDEO_FIELD, (clip.width, clip.height), field, size)


def _motion(
    clip: VideoClip,
    given: _Given,
    annotator: FrameAnnotator,
    n: int,
    size: tuple[int, int],
    *,
    start: int,
    count: int,
) -> list[Image.Image]:
    """Frames `start`..`start+count-1` of the motion reference resampled evenly to `n` frames,
    cover-cropped and annotated (only the frames the gap shows are annotated)."""
    _check_motion(clip, given)
    spread = np.linspace(0, clip.frame_count - 1, n).round().astype(int)[start : start + count]
    frames = clip.read([int(i) for i in spread], common.covering(size))
    return common.annotate(annotator, frames)
