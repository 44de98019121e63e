"""`video_outpainting`: extend the frame beyond its edges.

VACE outpainting (docs/model-inputs.md §4.5, docs/contract.md §12): each frame is pasted onto a
larger mid-gray canvas (mask 0 on the frame, 255 around it). Geometry (contract decision, "half"):
for a W x H input the canvas is W/2 * (left + right) by H/2 * (top + bottom) and the frame sits
at ((left - 1) * W/2, (top - 1) * H/2), so scales of 1.0 leave a side unchanged and 1.5 on all
four sides gives 1.5W x 1.5H with the frame centred.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

from vace_server import errors
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource
from vace_server.model_inputs import ModelProfile, VaceInputs
from vace_server.tasks.spec import Outpaint, TaskSpec

from . import common

__all__ = ["SCALE_FIELDS", "VIDEO_FIELD", "Placement", "build", "place"]

VIDEO_FIELD = InputField.VIDEO
SCALE_FIELDS = {
    "top": InputField.OUTPAINT_TOP,
    "bottom": InputField.OUTPAINT_BOTTOM,
    "left": InputField.OUTPAINT_LEFT,
    "right": InputField.OUTPAINT_RIGHT,
}


@dataclass(frozen=True)
class Placement:
    """Where the frame goes: the delivered canvas size and, at the generation size, the canvas
    and the frame's rectangle (x, y, width, height)."""

    output_size: tuple[int, int]
    size: tuple[int, int]
    frame_box: tuple[int, int, int, int]


def place(width: int, height: int, scales: Outpaint, profile: ModelProfile) -> Placement:
    """Canvas geometry for a `width` x `height` input.

    The exact canvas (floats) is fitted into the model's area in multiples of 16; frame and
    offset are scaled by the same per-axis factors, so resizing the generated video to the
    delivered size restores the exact proportions. The delivered size is the canvas rounded
    down to even, then the <= 720P rule.
    Raises: errors.InvalidParameter for a scale outside [1, 2] (the API checks it first).
    """
    for side, field in SCALE_FIELDS.items():
        if not 1.0 <= getattr(scales, side) <= 2.0:
            raise errors.field_invalid(field.mention)
    canvas_w = width / 2 * (scales.left + scales.right)
    canvas_h = height / 2 * (scales.top + scales.bottom)
    pad_left = (scales.left - 1) * width / 2
    pad_top = (scales.top - 1) * height / 2

    output_size = common.within_720p(common.even_floor(canvas_w), common.even_floor(canvas_h))
    size = common.generation_size(common.even_floor(canvas_w), common.even_floor(canvas_h), profile)
    sx, sy = size[0] / canvas_w, size[1] / canvas_h
    # Edges rounded (not offset and size separately), so the frame never leaves the canvas.
    x0, x1 = round(pad_left * sx), min(size[0], round((pad_left + width) * sx))
    y0, y1 = round(pad_top * sy), min(size[1], round((pad_top + height) * sy))
    return Placement(output_size, size, (x0, y0, x1 - x0, y1 - y0))


def build(spec: TaskSpec, media: MediaSource, profile: ModelProfile) -> VaceInputs:
    """Turns a `video_outpainting` task into pipeline inputs.

    Returns: VaceInputs with `video` = gray canvas with each frame pasted, `mask` = 255 outside
    the frame, 0 on it; output = canvas (<= 720P rule, even), input length (<= 5 s).
    Raises: errors.InvalidParameter for a spec the API should have refused;
    errors.InvalidFile (InvalidFile.Duration) for a video giving under MIN_VIDEO_FRAMES
    frames; media errors.
    Side effects: fetches the video (first 5 s) through `media`.
    """
    # 1. What the API guarantees: a video and scales in [1, 2].
    if not spec.video_url:
        raise errors.field_required(VIDEO_FIELD.mention)

    # 2. The input: first 5 s, at least a video's worth (MIN_VIDEO_FRAMES at 16 fps).
    clip = media.fetch_video(spec.video_url, VIDEO_FIELD, max_seconds=common.VIDEO_SECONDS)
    common.require_video_length(clip, VIDEO_FIELD, profile)

    # 3. Geometry of canvas and frame, at the delivered and the generation size.
    placement = place(clip.width, clip.height, spec.outpaint, profile)
    x, y, fw, fh = placement.frame_box

    # 4. Mask: generate around the frame, keep the frame (same for every frame).
    mask = common.flat_mask(placement.size, 255)
    ImageDraw.Draw(mask).rectangle((x, y, x + fw - 1, y + fh - 1), fill=0)

    # 5. Video: frames picked evenly for 16 fps (<= the model's frames, 4n+1), each resized
    #    into its rectangle (never cropped) on a gray canvas as it is decoded.
    def framed(frame: Image.Image) -> Image.Image:
        canvas = common.gray_canvas(placement.size)
        canvas.paste(frame.convert("RGB").resize((fw, fh), Image.Resampling.BICUBIC), (x, y))
        return canvas

    _, video = common.sample_frames(clip, profile.num_frames, profile.fps, framed)

    inputs = VaceInputs(
        width=placement.size[0],
        height=placement.size[1],
        num_frames=len(video),
        output_size=placement.output_size,
        output_seconds=common.clip_seconds(clip),
        video=video,
        mask=[mask] * len(video),
    )
    # 6. Fail here, not on the GPU, if anything is misaligned.
    inputs.validate()
    return inputs
