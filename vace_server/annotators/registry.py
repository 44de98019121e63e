"""Builds the worker's `AnnotatorSet` from the settings, once at start-up.

Checkpoint layout under `settings.annotators.annotator_dir` (`VACE_ANNOTATOR_DIR`); each
sub-folder is optional:

    <annotator_dir>/
        depth/  Depth Anything V2 transformers snapshot, e.g. depth-anything/
                Depth-Anything-V2-Large-hf (config.json, preprocessor_config.json,
                model.safetensors)                                  → `depth`
        pose/   DWPose ONNX files yolox_l.onnx + dw-ll_ucoco_384.onnx (the pose/ folder of
                ali-vilab/VACE-Annotators)                          → `posebody`, `posebodyface`
        sam2/   SAM2.1 transformers snapshot, e.g. facebook/sam2.1-hiera-tiny (config.json with
                model_type sam2_video + model.safetensors)          → tracking, `obj` cut-out

Rules:
- depth / pose: the folder exists → the model is loaded (failure raises); missing → the entry
  is None and `notes` says what to put where, so the functions that need it fail their task
  with that message. There is no classical substitute (docs/model-inputs.md §5.1, §5.6).
- segmentation (`segmentation_backend`) and tracking (`tracking_backend`): `model` requires
  `sam2/` (start-up fails without it), `classical` never loads it (border-colour/GrabCut
  cut-out, DIS-flow tracking), `auto` uses SAM2 when `sam2/` exists, else classical.
- scribble: always classical, `scribble_style` canny | xdog.
- A folder that exists but fails to load raises `AnnotatorLoadError`: a broken checkpoint is
  never silently replaced by something else.
- `device`: `auto` → cuda when available, else cpu; anything else is passed to torch as is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from vace_server.annotators.base import AnnotatorSet, FrameAnnotator, MaskTracker, SubjectSegmenter
from vace_server.annotators.cutout import cut_out_subject
from vace_server.annotators.errors import AnnotatorLoadError
from vace_server.annotators.scribble import ClassicalScribble
from vace_server.annotators.tracking import FlowTracker
from vace_server.settings import Settings

log = logging.getLogger(__name__)


class ClassicalSegmenter:
    """SubjectSegmenter wrapping the weight-free cut-out (annotators/cutout.py)."""

    name = "border-grabcut-cutout"
    backend = "classical"

    def cut_out(self, image: Image.Image) -> Image.Image:
        return cut_out_subject(image)


def resolve_device(device: str) -> str:
    """`auto` → `cuda` if torch sees a GPU, else `cpu`; other values unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _use_sam2(kind: str, backend: str, folder: Path | None) -> bool:
    """Whether `kind` (segmentation/tracking) uses SAM2; raises if `model` can't be honoured."""
    if backend == "classical":
        return False
    if folder is not None and folder.is_dir():
        return True
    if backend == "model":
        where = folder if folder is not None else "<annotator_dir>/sam2 (annotator_dir is unset)"
        raise AnnotatorLoadError(
            f"{kind}_backend=model needs SAM2: put a SAM2.1 snapshot in transformers format "
            f"(e.g. facebook/sam2.1-hiera-tiny) in {where}, or use {kind}_backend=auto|classical"
        )
    return False


def _load_depth(folder: Path, device: str) -> FrameAnnotator:
    from vace_server.annotators.depth import load_depth_annotator

    return load_depth_annotator(folder, device)


def _load_pose(folder: Path, device: str, with_face: bool) -> FrameAnnotator:
    from vace_server.annotators.pose import load_pose_annotator

    return load_pose_annotator(folder, device, with_face=with_face)


DEPTH_FOLDER, POSE_FOLDER = "depth", "pose"
# The `control_condition` values that need a checkpoint, and its folder under annotator_dir
# (scribble needs none): what load_annotators reads, and what the playground tells users.
CHECKPOINT_FOLDERS: dict[str, str] = {
    "posebodyface": POSE_FOLDER,
    "posebody": POSE_FOLDER,
    "depth": DEPTH_FOLDER,
}


def _missing(kind: str, what: str, root: Path | None) -> str:
    if root is None:
        return f"no {kind} checkpoint: set annotator_dir and put {what} in <annotator_dir>/{kind}"
    return f"no {kind} checkpoint: put {what} in {root / kind}"


def load_annotators(settings: Settings) -> AnnotatorSet:
    """Loads every configured annotator (see the module docstring for the rules).

    Raises: AnnotatorLoadError for `model` backends without `sam2/`, or any
    checkpoint folder that exists but does not load."""
    root = settings.annotators.annotator_dir
    device = resolve_device(settings.engine.device)
    # backend and style names are checked by the settings (Literal fields)
    seg_backend = settings.annotators.segmentation_backend
    track_backend = settings.annotators.tracking_backend
    scribble = ClassicalScribble(settings.annotators.scribble_style)
    notes: dict[str, str] = {}

    sam2_dir = root / "sam2" if root is not None else None
    segmenter: SubjectSegmenter = ClassicalSegmenter()
    tracker: MaskTracker = FlowTracker()
    if _use_sam2("segmentation", seg_backend, sam2_dir) and sam2_dir is not None:
        from vace_server.annotators.sam2 import load_sam2_segmenter

        segmenter = load_sam2_segmenter(sam2_dir, device)
    if _use_sam2("tracking", track_backend, sam2_dir) and sam2_dir is not None:
        from vace_server.annotators.sam2 import load_sam2_tracker

        tracker = load_sam2_tracker(sam2_dir, device)

    depth: FrameAnnotator | None = None
    depth_dir = root / DEPTH_FOLDER if root is not None else None
    if depth_dir is not None and depth_dir.is_dir():
        depth = _load_depth(depth_dir, device)
    else:
        notes["depth"] = _missing(DEPTH_FOLDER, "a Depth Anything V2 transformers snapshot", root)

    pose_body: FrameAnnotator | None = None
    pose_body_face: FrameAnnotator | None = None
    pose_dir = root / POSE_FOLDER if root is not None else None
    if pose_dir is not None and pose_dir.is_dir():
        pose_body = _load_pose(pose_dir, device, with_face=False)
        variant = getattr(pose_body, "variant", None)  # shares the loaded sessions
        if callable(variant):
            pose_body_face = variant(with_face=True)
        else:
            pose_body_face = _load_pose(pose_dir, device, with_face=True)
    else:
        what = "the DWPose ONNX files yolox_l.onnx and dw-ll_ucoco_384.onnx"
        reason = _missing(POSE_FOLDER, what, root)
        notes["posebody"] = reason
        notes["posebodyface"] = reason

    annotators = AnnotatorSet(
        segmenter=segmenter,
        tracker=tracker,
        scribble=scribble,
        depth=depth,
        pose_body=pose_body,
        pose_body_face=pose_body_face,
        notes=notes,
    )
    log.info("annotators on %s: %s", device, _summary(annotators.describe()))
    return annotators


def _summary(described: dict[str, dict[str, str | None]]) -> str:
    return ", ".join(f"{k}={e.get('name') or 'unavailable'}" for k, e in described.items())
