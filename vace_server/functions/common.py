"""Helpers shared by the video function modules: frame sampling, sizes, resizing, masks,
annotator lookup and reference preparation (docs/model-inputs.md §1, §3; docs/contract.md §12).

No torch: the API process imports this package.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from vace_server import errors
from vace_server.annotators.base import AnnotatorSet, FrameAnnotator, SubjectSegmenter
from vace_server.errors import InputField
from vace_server.media.clip import FramePrep, MediaSource, VideoClip
from vace_server.model_inputs import ModelProfile, fit_area
from vace_server.tasks.spec import Control, ReferenceRole, TaskSpec

__all__ = [
    "GRAY",
    "MASK_IMAGE_THRESHOLD",
    "MAX_720P_PIXELS",
    "MIN_VIDEO_FRAMES",
    "MIN_VIDEO_SECONDS",
    "MODEL_MASK_THRESHOLD",
    "VIDEO_SECONDS",
    "annotate",
    "annotator_or_fail",
    "binarise",
    "clip_seconds",
    "cover",
    "cover_mask",
    "covering",
    "even_floor",
    "fit_on_white",
    "flat_mask",
    "generation_size",
    "gray_canvas",
    "prepare_reference",
    "require_video_length",
    "same_fps",
    "sample_frames",
    "sample_indices",
    "single_reference",
    "size_not_match",
    "within_720p",
]

GRAY = (128, 128, 128)  # mid-gray: 0 in [-1, 1], "generate here" (docs/model-inputs.md §1)
# Mask thresholds ("generate" where value >= threshold). A client's mask image is read as
# VACE's inpainting annotator reads it: every pixel > 0 is "generate" (so soft or JPEG edges
# leave no rim of the removed object). A mask video goes to the model as given, as in VACE,
# whose model keeps a pixel when value / 255 <= 0.5: "generate" from 128 up.
MASK_IMAGE_THRESHOLD = 1
MODEL_MASK_THRESHOLD = 128
MAX_720P_PIXELS = 1280 * 720  # "<= 720P" means width * height <= 921,600 (docs/contract.md §12)
VIDEO_SECONDS = 5.0  # only the first 5 s of an input video are used (docs/contract.md §4)
MIN_VIDEO_FRAMES = 5  # the shortest video the model makes: 4n+1 frames, n >= 1
MIN_VIDEO_SECONDS = MIN_VIDEO_FRAMES / 16  # 0.3125 s: 5 frames at 16 fps (for messages)

# control -> (AnnotatorSet attribute, AnnotatorSet.notes key, human name, what to install).
# The layout is annotators/registry.py's: one sub-folder of VACE_ANNOTATOR_DIR per annotator;
# the commands are huggingface_hub's `hf` CLI (installed with the server).
_POSE_FILES = (
    "<VACE_ANNOTATOR_DIR>/pose/ with the DWPose ONNX files yolox_l.onnx and "
    "dw-ll_ucoco_384.onnx: `hf download ali-vilab/VACE-Annotators --include 'pose/*' "
    "--local-dir <VACE_ANNOTATOR_DIR>`"
)
_ANNOTATORS: dict[Control, tuple[str, str, str, str]] = {
    Control.POSE_BODY_FACE: ("pose_body_face", "posebodyface", "DWPose body+face", _POSE_FILES),
    Control.POSE_BODY: ("pose_body", "posebody", "DWPose body", _POSE_FILES),
    Control.DEPTH: (
        "depth",
        "depth",
        "Depth Anything V2",
        "<VACE_ANNOTATOR_DIR>/depth/ with a snapshot of "
        "https://huggingface.co/depth-anything/Depth-Anything-V2-Large-hf (config.json, "
        "preprocessor_config.json, model.safetensors): `hf download "
        "depth-anything/Depth-Anything-V2-Large-hf --local-dir <VACE_ANNOTATOR_DIR>/depth`",
    ),
    Control.SCRIBBLE: ("scribble", "scribble", "scribble", "VACE_SCRIBBLE_STYLE (set it)"),
}


# ------------------------------------------------------------------------------ frames, time
def sample_indices(
    count: int, src_fps: float, max_frames: int, fps: int, *, snap: bool = True
) -> list[int]:
    """Source frame indices for playback at `fps` (VACE's 16 fps resampling).

    n = min(max_frames, round(count / src_fps * fps) + 1), spread evenly over the whole clip,
    first and last kept, then trimmed to 4n+1 when `snap`. The "+ 1" is the frame at the very
    end of the clip's span: where the source has no frame there (an 80-frame 16 fps file lasts
    exactly 5 s but its last frame starts at 4.9375 s) the last frame is held for that one step
    (`snap` only), so an exact 5 s input gives 81 frames = 5 s, like one that has a frame at
    5 s (Wan's own 81-frame outputs, or 150 + 1 frames at 30 fps). Without `snap` (extension
    clips, whose total is fixed) no frame is repeated: n <= count.

    Raises: ValueError for an empty clip or a non-positive rate.
    """
    if count < 1 or src_fps <= 0 or max_frames < 1:
        raise ValueError(f"cannot sample {count} frames at {src_fps} fps (max {max_frames})")
    n = min(max_frames, round(count / src_fps * fps) + 1, count + 1 if snap else count)
    if snap:
        n = (n - 1) // 4 * 4 + 1
    if n > count:  # the end-of-span hold: every source frame, the last one twice
        return [*range(count), count - 1]
    return [int(i) for i in np.linspace(0, count - 1, n).round().astype(int)]


def sample_frames(
    clip: VideoClip, max_frames: int, fps: int, prepare: FramePrep, *, snap: bool = True
) -> tuple[list[int], list[Image.Image]]:
    """`sample_indices` applied to a clip; only those frames are decoded, each through
    `prepare` (e.g. `covering(size)`). Returns: (source indices, prepared frames)."""
    indices = sample_indices(clip.frame_count, clip.fps, max_frames, fps, snap=snap)
    return indices, clip.read(indices, prepare)


def clip_seconds(clip: VideoClip, max_seconds: float = VIDEO_SECONDS) -> float:
    """Length of the kept input, at most `max_seconds`: the kept span may hold the frame at
    exactly `max_seconds` (81 frames at 16 fps), which makes it 1/fps longer."""
    return min(clip.seconds, max_seconds)


def require_video_length(clip: VideoClip, field: InputField, profile: ModelProfile) -> None:
    """A video whose length the output follows (or whose motion it copies) must be a video:
    sampled for the model (`sample_indices`), it must give at least MIN_VIDEO_FRAMES frames,
    4n+1 with n >= 1 (one frame would be a still image). That is 5 source frames lasting at
    least 3.5/16 s: 5 frames at 16 fps, 7 at 30 fps.

    Raises: errors.InvalidFile (InvalidFile.Duration) naming `field` and the minimum."""
    needed = min(MIN_VIDEO_FRAMES, profile.num_frames)
    count = len(sample_indices(clip.frame_count, clip.fps, profile.num_frames, profile.fps))
    if count < needed or clip.frame_count < needed:  # the end-of-span hold invents no video
        raise errors.InvalidFile(
            f"{field.mention} is too short: {clip.frame_count} frame(s) at {clip.fps:.3g} fps "
            f"({clip.seconds:.3g} s) give {count} frame(s) at {profile.fps} fps; a video must "
            f"give at least {needed} (e.g. {needed} frames at 16 fps, "
            f"{MIN_VIDEO_SECONDS:g} s).",
            code="InvalidFile.Duration",
        )


def same_fps(a: float, b: float) -> bool:
    """Equal frame rates, allowing for rational rates decoded as floats (30000/1001)."""
    return math.isclose(a, b, rel_tol=1e-3)


# ------------------------------------------------------------------------------ sizes
def even_floor(value: float) -> int:
    """Rounds down to an even number (H.264 4:2:0 needs even sides), at least 2. A float a hair
    below an integer (115 computed as 114.99999999999999) counts as that integer."""
    return max(2, math.floor(value + 1e-6) // 2 * 2)


def within_720p(width: int, height: int) -> tuple[int, int]:
    """The delivered size for an input of `width` x `height` (docs/contract.md §12 "<= 720P").

    Kept when width * height <= 921,600, otherwise scaled down keeping the aspect ratio; each
    side is rounded down to even either way, since H.264 4:2:0 needs even sides.
    """
    if width * height <= MAX_720P_PIXELS:
        return even_floor(width), even_floor(height)
    # floor(w * sqrt(A / (w h))) = floor(sqrt(A w / h)) = isqrt(A w // h): exact, no float error
    # (1920x1080 -> 1280x720, not 1278x720).
    scaled_w = math.isqrt(MAX_720P_PIXELS * width // height)
    scaled_h = math.isqrt(MAX_720P_PIXELS * height // width)
    return even_floor(scaled_w), even_floor(scaled_h)


def generation_size(width: int, height: int, profile: ModelProfile) -> tuple[int, int]:
    """(W, H) the model runs at for a `width` x `height` frame: same aspect within the model's
    area, multiples of 16, never upscaled (model_inputs.fit_area).

    Raises: errors.InvalidFile (InvalidFile.Resolution) for a frame smaller than 16 px.
    """
    try:
        return fit_area(width, height, profile.generation_area)
    except ValueError as exc:
        raise errors.InvalidFile(
            f"The input resolution {width}x{height} is too small: each side must be at least "
            "16 px.",
            code="InvalidFile.Resolution",
        ) from exc


def size_not_match(
    field: InputField, size: tuple[int, int], ref: InputField, ref_size: tuple[int, int]
) -> errors.InvalidParameter:
    """The task error for a resolution mismatch (docs/contract.md §8.2: literal prefix)."""
    return errors.InvalidParameter(
        f"The size is not match: {field.mention} is {size[0]}x{size[1]} but {ref.mention} is "
        f"{ref_size[0]}x{ref_size[1]}; they must have the same resolution."
    )


# ------------------------------------------------------------------------------ images
def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A frame scaled to cover `size` and centre-cropped (bicubic), RGB."""
    return ImageOps.fit(image.convert("RGB"), size, method=Image.Resampling.BICUBIC)


def covering(size: tuple[int, int]) -> FramePrep:
    """`cover` to `size`, as a frame preparation for `VideoClip.read`."""
    return lambda frame: cover(frame, size)


def cover_mask(
    mask: Image.Image, size: tuple[int, int], threshold: int = MODEL_MASK_THRESHOLD
) -> Image.Image:
    """A mask binarised at `threshold` and cropped exactly like `cover` crops its frame
    (nearest: stays 0/255)."""
    return ImageOps.fit(binarise(mask, threshold), size, method=Image.Resampling.NEAREST)


def binarise(mask: Image.Image, threshold: int = MODEL_MASK_THRESHOLD) -> Image.Image:
    """Any mask -> "L" with exactly 255 (value >= `threshold`, generate) or 0 (keep)."""
    a = np.asarray(mask.convert("L"))
    return Image.fromarray(np.where(a >= threshold, 255, 0).astype(np.uint8), mode="L")


def fit_on_white(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to fit inside `size` (area interpolation), centred on white, RGB: how
    VACE aligns a second frame or clip to the first one's resolution (`align_frames`).
    An image already of `size` is returned as is."""
    rgb = image.convert("RGB")
    if rgb.size == size:
        return rgb
    import cv2  # only here: the API process imports this package

    (w1, h1), (w2, h2) = size, rgb.size
    ratio = min(w1 / w2, h1 / h2)
    new_w, new_h = max(1, int(w2 * ratio)), max(1, int(h2 * ratio))
    resized = cv2.resize(np.asarray(rgb), (new_w, new_h), interpolation=cv2.INTER_AREA)
    canvas = np.full((h1, w1, 3), 255, np.uint8)
    x, y = (w1 - new_w) // 2, (h1 - new_h) // 2
    canvas[y : y + new_h, x : x + new_w] = resized
    return Image.fromarray(canvas)


def gray_canvas(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, GRAY)


def flat_mask(size: tuple[int, int], value: int) -> Image.Image:
    return Image.new("L", size, value)


# ------------------------------------------------------------------------------ annotators
def annotator_or_fail(annotators: AnnotatorSet, control: Control) -> FrameAnnotator:
    """The control's annotator, or a task error saying which checkpoint to install.

    Raises: errors.AnnotatorUnavailable when the worker has not loaded that annotator (it is
    never replaced by a different one).
    """
    attribute, note_key, human, files = _ANNOTATORS[control]
    annotator: FrameAnnotator | None = getattr(annotators, attribute)
    if annotator is not None:
        return annotator
    reason = annotators.notes.get(note_key) or "no checkpoint configured"
    # The request is fine: the gap is the server's, and the operator can close it.
    raise errors.AnnotatorUnavailable(
        f"{InputField.CONTROL.key_mention} '{control.value}' needs the {human} annotator, "
        f"which this server has not loaded ({reason}). This is the server's configuration, "
        f"not a fault of the request: its operator fills {files}, then restarts the worker."
    )


def annotate(annotator: FrameAnnotator, frames: Sequence[Image.Image]) -> list[Image.Image]:
    """Runs `annotator` and checks it kept the frame count and sizes (else ValueError)."""
    out = [f.convert("RGB") for f in annotator.annotate(frames)]
    if len(out) != len(frames) or any(o.size != f.size for o, f in zip(out, frames, strict=True)):
        raise ValueError(f"annotator {annotator.name} changed the frame count or size")
    return out


def prepare_reference(
    image: Image.Image,
    role: ReferenceRole,
    segmenter: SubjectSegmenter,
    size: tuple[int, int],
) -> Image.Image:
    """One reference image for its role (docs/model-inputs.md §4.1, §5.5).

    `obj`: subject cut out onto white and cropped to it. `bg`: the scene kept whole. Neither is
    resized here: engine.runner letterboxes every reference onto white at the generation size
    (scale to fit, centred, bilinear) exactly as VACE's `prepare_source` does, so a scene of
    another aspect gets white bars as in VACE. `size` is the generation size (unused by either
    role today; kept so callers state it).
    """
    del size
    if role is ReferenceRole.SCENE:
        return image.convert("RGB")
    return segmenter.cut_out(image).convert("RGB")


def single_reference(
    spec: TaskSpec,
    media: MediaSource,
    field: InputField,
    role: ReferenceRole,
    segmenter: SubjectSegmenter,
    size: tuple[int, int],
) -> list[Image.Image] | None:
    """The functions that take one reference image: the first one, prepared for `role`, as
    `reference_images`, or None."""
    if not spec.references:
        return None
    image = media.fetch_image(spec.references[0].url, field)
    return [prepare_reference(image, role, segmenter, size)]
