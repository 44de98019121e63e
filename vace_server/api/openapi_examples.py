"""The create body's examples in the OpenAPI document: upstream's example of each function as
docs/contract.md §5 gives it (prompts and parameters as written there; the media URLs, which
§5 elides, point at `media.example`)."""

from __future__ import annotations

from typing import Any

MODEL = "wanx2.1-vace-plus"
MEDIA = "https://media.example/"


def _example(summary: str, inputs: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "value": {"model": MODEL, "input": inputs, "parameters": parameters},
    }


CREATE_EXAMPLES: dict[str, Any] = {
    "image_reference": _example(
        "Subject and scene from reference images (§5.1)",
        {
            "function": "image_reference",
            "prompt": "A girl walks slowly out of an ancient forest shrouded in morning mist.",
            "ref_images_url": [MEDIA + "girl.png", MEDIA + "forest.png"],
        },
        {"prompt_extend": True, "obj_or_bg": ["obj", "bg"], "size": "1280*720"},
    ),
    "video_repainting": _example(
        "Repaint a video following its depth (§5.2)",
        {
            "function": "video_repainting",
            "prompt": "A black steampunk-style car drives along the street.",
            "video_url": MEDIA + "car.mp4",
        },
        {"prompt_extend": False, "control_condition": "depth"},
    ),
    "video_edit": _example(
        "Edit the masked region of a video (§5.3)",
        {
            "function": "video_edit",
            "prompt": "A lion in a suit elegantly sips coffee in a Parisian-style French cafe.",
            "mask_image_url": MEDIA + "mask.png",
            "video_url": MEDIA + "cafe.mp4",
            "mask_frame_id": 1,
        },
        {"prompt_extend": False, "mask_type": "tracking", "expand_ratio": 0.05},
    ),
    "video_extension": _example(
        "Extend a clip to 5 s (§5.4)",
        {
            "function": "video_extension",
            "prompt": "A dog wearing sunglasses skateboards down the street, 3D cartoon.",
            "first_clip_url": MEDIA + "dog.mp4",
        },
        {"prompt_extend": False},
    ),
    "video_outpainting": _example(
        "Grow the canvas 1.5x on every side (§5.5)",
        {
            "function": "video_outpainting",
            "prompt": "An elegant woman plays the violin passionately, a full symphony "
            "orchestra behind her.",
            "video_url": MEDIA + "violin.mp4",
        },
        {
            "prompt_extend": False,
            "top_scale": 1.5,
            "bottom_scale": 1.5,
            "left_scale": 1.5,
            "right_scale": 1.5,
        },
    ),
}
