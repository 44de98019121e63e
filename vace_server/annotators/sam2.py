"""SAM2 through transformers: mask tracking and subject cut-out (docs/model-inputs.md §5.4, §5.5).

Checkpoint: a SAM2.1 snapshot **in transformers format**, e.g. the hub repo
`facebook/sam2.1-hiera-tiny` (also -small, -base-plus, -large): `config.json` with
`"model_type": "sam2_video"`, `model.safetensors` (or sharded / `pytorch_model.bin`), and
optionally `preprocessor_config.json` (only `image_mean`/`image_std` are read). The original
`sam2.1_hiera_*.pt` + yaml files of the `sam2` package are **not** this format. An image-only
`sam2` snapshot (e.g. `facebook/sam2-hiera-tiny-hf`) lacks the memory modules and is refused.

- `Sam2Tracker` (`Sam2VideoModel`): VACE's `masktrack` — the mask is the prompt on frame
  `start`, then propagated forward to the last frame and backward to the first, one object.
- `Sam2Segmenter` (`Sam2Model`, same snapshot): the subject of an `obj` reference image,
  prompted once with a box covering the image minus a small margin and once with the centre
  point; the best of the six candidate masks is kept, then background → white, crop.

transformers' `Sam2Processor`/`Sam2VideoProcessor` need torchvision, which is not a dependency
of this project, so the few steps they do are done here, matching them: bilinear (antialiased)
resize to the model's square input, 1/255, ImageNet mean/std; prompt coordinates scaled to the
input square; low-resolution logits upsampled bilinearly to the frame and thresholded at 0.
Frames go in as RGB, as VACE gives them to SAM2 (its image and video predictors read RGB). The
seed mask: every pixel > 0 is object, as SAM2 reads the raw 0..255 mask VACE hands it.
Runs in float32; deterministic in eval mode. The tracker holds every preprocessed frame in CPU
memory (81 frames at the real 1024² input ≈ 1 GB) and the inference state on `device`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vace_server.annotators.base import MaskTracker, SubjectSegmenter, check_track_arguments
from vace_server.annotators.cutout import cut_out_subject
from vace_server.annotators.errors import AnnotatorLoadError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
OBJECT_ID = 1
BOX_MARGIN = 0.02  # the segmenter's box prompt is inset by this share of each side
MAX_FRACTION = 0.95  # a candidate covering more of the image is "everything", not a subject
ISLAND_FRACTION = 0.05  # components smaller than this share of the largest one are dropped


def _hint(folder: Path) -> str:
    return (
        f"put a SAM2.1 snapshot in transformers format (e.g. the hub repo "
        f"`facebook/sam2.1-hiera-tiny`: config.json with model_type sam2_video + "
        f"model.safetensors) in {folder}"
    )


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise AnnotatorLoadError(f"no SAM2 checkpoint folder: {_hint(folder)}")
    if not (folder / "config.json").is_file():
        raise AnnotatorLoadError(f"{folder} has no config.json: {_hint(folder)}")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise AnnotatorLoadError(f"{folder} has no model weights: {_hint(folder)}")


def _image_config(folder: Path) -> dict[str, Any]:
    """For Sam2Model from a `sam2_video` snapshot: its image-model part as a Sam2Config (saves
    transformers' model-type mismatch warning); nothing to change for a `sam2` snapshot."""
    from transformers import AutoConfig, Sam2Config

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if config.model_type != "sam2_video":
        return {}
    parts = {
        key: getattr(config, key).to_dict()
        for key in ("vision_config", "prompt_encoder_config", "mask_decoder_config")
    }
    for part in parts.values():
        part.pop("model_type", None)
    return {"config": Sam2Config(**parts, initializer_range=config.initializer_range)}


def _load(model_class: Any, folder: Path, device: str, image_only: bool = False) -> Any:
    _check_folder(folder)
    try:
        extra = _image_config(folder) if image_only else {}
        model, info = model_class.from_pretrained(
            folder, output_loading_info=True, local_files_only=True, **extra
        )
    except Exception as exc:
        raise AnnotatorLoadError(f"cannot load SAM2 from {folder}: {exc}; {_hint(folder)}") from exc
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise AnnotatorLoadError(
            f"SAM2 checkpoint in {folder} lacks {len(missing)} weights of "
            f"{model_class.__name__} (e.g. {missing[0]}); {_hint(folder)}"
        )
    return model.to(device).eval()


class _Preprocessor:
    """What Sam2VideoProcessor does to frames, without torchvision."""

    def __init__(self, folder: Path, size: int) -> None:
        self.size = size
        mean: tuple[float, ...] = IMAGENET_MEAN
        std: tuple[float, ...] = IMAGENET_STD
        config = folder / "preprocessor_config.json"
        if config.is_file():
            try:
                data = json.loads(config.read_text())
                mean = tuple(float(v) for v in data.get("image_mean") or mean)
                std = tuple(float(v) for v in data.get("image_std") or std)
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                raise AnnotatorLoadError(f"unreadable {config}: {exc}") from exc
            if len(mean) != 3 or len(std) != 3:
                raise AnnotatorLoadError(f"{config}: image_mean/image_std need 3 values")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def pixels(self, frames: Sequence[Image.Image], frame_size: tuple[int, int]) -> torch.Tensor:
        """RGB frames (resized to frame_size first if needed) → (N, 3, S, S) float32, CPU."""
        out = torch.empty((len(frames), 3, self.size, self.size), dtype=torch.float32)
        for i, frame in enumerate(frames):
            rgb = frame.convert("RGB")
            if rgb.size != frame_size:
                rgb = rgb.resize(frame_size, Image.Resampling.BICUBIC)
            t = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)[None].float()
            t = F.interpolate(
                t, (self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
            out[i] = ((t / 255.0 - self.mean) / self.std)[0]
        return out

    def mask_prompt(self, mask: np.ndarray) -> torch.Tensor:
        """Binary (H, W) mask → (1, 1, S, S) 0/1 float, as process_new_mask_for_video_frame."""
        t = torch.from_numpy(mask.astype(np.float32))[None, None]
        t = F.interpolate(
            t, (self.size, self.size), mode="bilinear", align_corners=False, antialias=True
        )
        return (t >= 0.5).float()


def _upsample(logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(N, h, w) low-res logits → (N, H, W) bool masks (logit > 0)."""
    up = F.interpolate(
        logits[:, None].float(), (height, width), mode="bilinear", align_corners=False
    )
    return (up[:, 0] > 0).cpu().numpy()


def _binary(mask: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The seed mask: every pixel > 0 is object (VACE hands SAM2 the raw 0..255 mask, which
    SAM2 thresholds at 0.5 after resizing, so any nonzero value counts)."""
    gray = mask.convert("L")
    if gray.size != size:
        gray = gray.resize(size, Image.Resampling.NEAREST)
    return np.asarray(gray) > 0


def _to_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(mask, 255, 0).astype(np.uint8))


class Sam2Tracker:
    """MaskTracker backed by transformers' Sam2VideoModel (VACE `masktrack`)."""

    name = "sam2-video"
    backend = "model"

    def __init__(self, model: Any, preprocessor: _Preprocessor, device: str) -> None:
        self.model = model
        self.preprocessor = preprocessor
        self.device = device

    def track(
        self, frames: Sequence[Image.Image], mask: Image.Image, start: int
    ) -> list[Image.Image]:
        """Propagates `mask` (L, 255 = object) from `frames[start]` to every frame.

        Returns: one L mask per frame, values 0/255, each of the first frame's size; frame
        `start` carries the given mask itself. An empty mask gives empty masks.
        Raises: ValueError for no frames or `start` out of range."""
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        check_track_arguments(frames, start)
        size = frames[0].size
        width, height = size
        given = _binary(mask, size)
        if not given.any():
            return [_to_image(given) for _ in frames]
        session = Sam2VideoInferenceSession(
            video=self.preprocessor.pixels(frames, size),
            video_height=height,
            video_width=width,
            inference_device=self.device,
            inference_state_device=self.device,
            video_storage_device="cpu",
            dtype=torch.float32,
        )
        # what Sam2VideoProcessor.add_inputs_to_inference_session does for a mask prompt
        obj_idx = session.obj_id_to_idx(OBJECT_ID)
        session.add_mask_inputs(obj_idx, start, self.preprocessor.mask_prompt(given))
        session.obj_with_new_inputs = [OBJECT_ID]
        masks: list[np.ndarray | None] = [None] * len(frames)
        with torch.inference_mode():
            for reverse in (False, True):
                for output in self.model.propagate_in_video_iterator(
                    session, start_frame_idx=start, reverse=reverse
                ):
                    logits = output.pred_masks[0]  # (1, h, w) for our single object
                    masks[output.frame_idx] = _upsample(logits, height, width)[0]
        masks[start] = given
        return [_to_image(m if m is not None else np.zeros_like(given)) for m in masks]


def _drop_islands(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.nonzero(areas >= ISLAND_FRACTION * areas.max())[0]
    return np.isin(labels, keep)


def _choose(masks: np.ndarray, scores: np.ndarray) -> np.ndarray | None:
    """Highest predicted IoU among non-empty, not-everything candidates; else the best
    non-empty one; None when all are empty."""
    area = masks.reshape(len(masks), -1).mean(axis=1)
    for usable in (area > 0) & (area <= MAX_FRACTION), area > 0:
        if usable.any():
            best = int(np.argmax(np.where(usable, scores, -np.inf)))
            return masks[best]
    return None


def apply_subject_mask(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """Background (mask False) → white 255, cropped to the mask's bounding box.

    Raises: ValueError for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(ys):
        raise ValueError("empty subject mask")
    rgb = np.asarray(image.convert("RGB")).copy()
    rgb[~mask] = 255
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    return Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]))


class Sam2Segmenter:
    """SubjectSegmenter backed by transformers' Sam2Model (VACE `SubjectAnnotator`)."""

    name = "sam2-image"
    backend = "model"

    def __init__(self, model: Any, preprocessor: _Preprocessor, device: str) -> None:
        self.model = model
        self.preprocessor = preprocessor
        self.device = device

    def subject_mask(self, image: Image.Image) -> np.ndarray | None:
        """The chosen SAM2 mask (H, W) bool, small islands dropped; None if all are empty."""
        rgb = image.convert("RGB")
        width, height = rgb.size
        s = self.preprocessor.size
        sx, sy = s / width, s / height
        mx, my = BOX_MARGIN * width, BOX_MARGIN * height
        box = [mx * sx, my * sy, (width - mx) * sx, (height - my) * sy]
        centre = [width / 2 * sx, height / 2 * sy]
        pixels = self.preprocessor.pixels([rgb], rgb.size).to(self.device)
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(pixels)
            by_box = self.model(
                image_embeddings=embeddings,
                input_boxes=torch.tensor([[box]], device=self.device),
                multimask_output=True,
            )
            by_point = self.model(
                image_embeddings=embeddings,
                input_points=torch.tensor([[[centre]]], device=self.device),
                input_labels=torch.tensor([[[1]]], device=self.device),
                multimask_output=True,
            )
        logits = torch.cat([by_box.pred_masks[0, 0], by_point.pred_masks[0, 0]])
        scores = torch.cat([by_box.iou_scores[0, 0], by_point.iou_scores[0, 0]])
        chosen = _choose(_upsample(logits, height, width), scores.float().cpu().numpy())
        return None if chosen is None else _drop_islands(chosen)

    def cut_out(self, image: Image.Image) -> Image.Image:
        """Subject on white, cropped to it. Falls back to the classical cut-out (logged) only
        when SAM2 returns an empty mask."""
        rgb = image.convert("RGB")
        mask = self.subject_mask(rgb)
        if mask is None or not mask.any():
            log.warning("SAM2 found no subject in a %dx%d reference: classical cut-out", *rgb.size)
            return cut_out_subject(rgb)
        return apply_subject_mask(rgb, mask)


def _input_size(model: Any) -> int:
    size = model.config.prompt_encoder_config.image_size
    return int(size[0] if isinstance(size, list | tuple) else size)


def load_sam2_tracker(folder: Path, device: str) -> MaskTracker:
    """Sam2VideoModel from `folder` on `device`. Raises AnnotatorLoadError if missing/broken."""
    from transformers import Sam2VideoModel

    model = _load(Sam2VideoModel, folder, device)
    return Sam2Tracker(model, _Preprocessor(folder, _input_size(model)), device)


def load_sam2_segmenter(folder: Path, device: str) -> SubjectSegmenter:
    """Sam2Model from `folder` on `device`. Raises AnnotatorLoadError if missing/broken."""
    from transformers import Sam2Model

    model = _load(Sam2Model, folder, device, image_only=True)
    return Sam2Segmenter(model, _Preprocessor(folder, _input_size(model)), device)
