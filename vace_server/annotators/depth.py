"""Model-backed depth annotator: Depth Anything V2, transformers (docs/model-inputs.md §5.1).

VACE's `depthv2` runs Depth-Anything-V2 ViT-L, then per frame min–max normalises the predicted
(relative, near = bright) depth to 0..255 and repeats it on 3 gray channels at the frame size.
We do the same with the transformers port, loaded only from a local folder:

    <folder>/config.json               model_type "depth_anything"
    <folder>/preprocessor_config.json  DPTImageProcessor (518, keep aspect, ×14)
    <folder>/model.safetensors         (or pytorch_model.bin, or a sharded index)

i.e. a snapshot of `depth-anything/Depth-Anything-V2-Large-hf` (the model VACE uses; ≈1.3 GB),
or the -Base-hf / -Small-hf variants (smaller, faster, slightly coarser).

Channel order as VACE: VACE hands its RGB frame to `infer_image`, which expects BGR and swaps
it, so the network sees the frame with red and blue exchanged. The control videos VACE was
trained on were made that way, so frames go to the processor channel-reversed here too. The
prediction is resized with bilinear `align_corners=True` to the frame size before normalising,
as `infer_image` does. Left as the transformers port does it (a small numeric difference, not a
convention): its processor resizes with PIL bicubic where VACE uses OpenCV's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vace_server.annotators.errors import AnnotatorLoadError

log = logging.getLogger(__name__)

EXPECTED = (
    "a Hugging Face snapshot of depth-anything/Depth-Anything-V2-Large-hf "
    "(or -Base-hf / -Small-hf): config.json, preprocessor_config.json and model.safetensors"
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
DEFAULT_BATCH_SIZE = 4


def _check_folder(folder: Path) -> dict[str, Any]:
    """The folder's config.json, or AnnotatorLoadError saying what is missing."""
    if not folder.is_dir():
        raise AnnotatorLoadError(
            f"depth checkpoint folder {folder} does not exist; expected {EXPECTED}"
        )
    missing = [
        name
        for name in ("config.json", "preprocessor_config.json")
        if not (folder / name).is_file()
    ]
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        missing.append("model.safetensors")
    if missing:
        raise AnnotatorLoadError(
            f"depth checkpoint folder {folder} is incomplete (missing {', '.join(missing)}); "
            f"expected {EXPECTED}"
        )
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnnotatorLoadError(
            f"cannot read {folder / 'config.json'}: {exc}; expected {EXPECTED}"
        ) from exc
    if not isinstance(config, dict):
        raise AnnotatorLoadError(
            f"{folder / 'config.json'} is not a JSON object; expected {EXPECTED}"
        )
    return config


def channel_reversed(frame: Image.Image) -> Image.Image:
    """The RGB frame with red and blue exchanged: what VACE's depth network sees."""
    rgb = np.asarray(frame.convert("RGB"))
    return Image.fromarray(np.ascontiguousarray(rgb[..., ::-1]))


def normalise_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) float depth → (H, W, 3) uint8 gray, min–max stretched to 0..255 (VACE: truncated,
    not rounded). A constant map becomes all zeros."""
    d = depth.astype(np.float64)
    lo, hi = float(np.min(d)), float(np.max(d))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        gray = np.zeros(d.shape, np.uint8)
    else:
        gray = ((d - lo) / (hi - lo) * 255.0).clip(0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


class DepthAnythingAnnotator:
    """FrameAnnotator: frames → gray depth renderings of the same size and count."""

    backend = "model"

    def __init__(
        self, model: Any, processor: Any, device: str, *, name: str, batch_size: int
    ) -> None:
        self.model = model
        self.processor = processor
        self.device = device
        self.name = name
        self.batch_size = max(1, batch_size)

    def _batches(self, frames: Sequence[Image.Image]) -> list[list[Image.Image]]:
        """Consecutive runs of same-size frames (channel-reversed, as VACE's network sees
        them), at most batch_size each."""
        batches: list[list[Image.Image]] = []
        for frame in frames:
            swapped = channel_reversed(frame)
            last = batches[-1] if batches else None
            if last is not None and len(last) < self.batch_size and last[0].size == swapped.size:
                last.append(swapped)
            else:
                batches.append([swapped])
        return batches

    def annotate(self, frames: Sequence[Image.Image]) -> list[Image.Image]:
        import torch
        import torch.nn.functional as F

        out: list[Image.Image] = []
        dtype = next(self.model.parameters()).dtype
        for batch in self._batches(frames):
            width, height = batch[0].size
            inputs = self.processor(images=batch, return_tensors="pt")
            pixels = inputs["pixel_values"].to(self.device, dtype=dtype)
            with torch.inference_mode():
                predicted = self.model(pixel_values=pixels).predicted_depth
                resized = F.interpolate(
                    predicted[:, None].float(),
                    size=(height, width),
                    mode="bilinear",
                    align_corners=True,
                )[:, 0]
            for depth in resized.cpu().numpy():
                out.append(Image.fromarray(normalise_depth(depth)))
        return out


def load_depth_annotator(
    folder: Path, device: str, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> DepthAnythingAnnotator:
    """Load Depth Anything V2 from `folder` (never downloads) onto `device` ("cpu", "cuda:0").

    Raises AnnotatorLoadError when the folder is missing, incomplete or unloadable."""
    folder = Path(folder)
    config = _check_folder(folder)
    try:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True)
        model = model.to(device).eval()
    except Exception as exc:  # any loader failure is a configuration problem for the operator
        raise AnnotatorLoadError(
            f"cannot load the depth model from {folder}: {exc}; expected {EXPECTED}"
        ) from exc
    model_type = str(config.get("model_type", "depth"))
    name = "depth-anything-v2" if model_type == "depth_anything" else model_type.replace("_", "-")
    log.info("depth annotator %s loaded from %s on %s", name, folder, device)
    return DepthAnythingAnnotator(model, processor, device, name=name, batch_size=batch_size)
