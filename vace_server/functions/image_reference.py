"""`image_reference`: 1-3 reference images (subjects and at most one scene) -> a new video.

VACE reference-to-video (docs/model-inputs.md §4.1): no source video, no mask; each reference is
one extra latent frame the model denoises with the video and cuts off before decoding. The
references keep the client's order (VACE's); engine.runner hands them to diffusers reversed.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from vace_server import errors
from vace_server.errors import InputField
from vace_server.media.clip import MediaSource
from vace_server.model_inputs import ModelProfile, VaceInputs, fit_area
from vace_server.tasks.spec import ReferenceRole, TaskSpec

__all__ = ["DEFAULT_SIZE", "FIELD", "build"]

DEFAULT_SIZE = (1280, 720)  # contract default `size` (docs/contract.md §5.1)
FIELD = InputField.REFERENCES

CutOut = Callable[[Image.Image], Image.Image]


def build(spec: TaskSpec, media: MediaSource, profile: ModelProfile, cut_out: CutOut) -> VaceInputs:
    """Turns an `image_reference` task into pipeline inputs.

    Returns: VaceInputs with `reference_images` only, in the client's (= VACE's) order.
    Raises: errors.InvalidParameter for a spec the API should have refused (no reference,
    two scenes); media errors from `media.fetch_image`; ValueError if the result is misaligned.
    Side effects: fetches every reference URL through `media`.
    """
    # 1. Check what the API guarantees: 1..n references, at most one scene.
    if not spec.references:
        raise errors.field_required(FIELD.mention)
    if sum(ref.role is ReferenceRole.SCENE for ref in spec.references) > 1:
        raise errors.InvalidParameter("At most one reference image may be a background (bg).")

    # 2. Sizes: delivered exactly at `size`; generated at the same aspect within the model's
    #    area budget, in multiples of 16 (e.g. 1280*720 -> 832x480 on 1.3B).
    output_size = spec.size or DEFAULT_SIZE
    width, height = fit_area(*output_size, profile.generation_area)

    # 3. Fetch each reference and prepare it for its role, keeping the client's order (as VACE
    #    does: no role moves). A subject is cut out onto white and cropped to its bounding box
    #    (VACE's SubjectAnnotator); a scene is kept whole. Neither is resized: engine.runner
    #    letterboxes each onto white at the generation size, as VACE does.
    references: list[Image.Image] = []
    for ref in spec.references:
        image = media.fetch_image(ref.url, FIELD)
        if ref.role is ReferenceRole.SCENE:
            references.append(image.convert("RGB"))
        else:
            references.append(cut_out(image).convert("RGB"))

    # 4. Frames and duration: the model's native clip (81 frames at 16 fps = 5 s).
    inputs = VaceInputs(
        width=width,
        height=height,
        num_frames=profile.num_frames,
        output_size=output_size,
        output_seconds=(profile.num_frames - 1) / profile.fps,
        video=None,
        mask=None,
        reference_images=references,
    )
    # 5. Fail here, not on the GPU, if anything is misaligned.
    inputs.validate()
    return inputs
