"""The internal, validated, frozen description of one task. No DashScope wire names below `api/`."""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vace_server.settings import Settings


class VaceFunction(enum.StrEnum):
    IMAGE_REFERENCE = "image_reference"
    VIDEO_REPAINTING = "video_repainting"
    VIDEO_EDIT = "video_edit"
    VIDEO_EXTENSION = "video_extension"
    VIDEO_OUTPAINTING = "video_outpainting"


class ReferenceRole(enum.StrEnum):
    SUBJECT = "obj"
    SCENE = "bg"


class Control(enum.StrEnum):
    POSE_BODY_FACE = "posebodyface"
    POSE_BODY = "posebody"
    DEPTH = "depth"
    SCRIBBLE = "scribble"


class MaskType(enum.StrEnum):
    TRACKING = "tracking"
    FIXED = "fixed"


class ExpandMode(enum.StrEnum):
    HULL = "hull"
    BBOX = "bbox"
    ORIGINAL = "original"


@dataclass(frozen=True)
class Reference:
    url: str
    role: ReferenceRole


@dataclass(frozen=True)
class Outpaint:
    top: float = 1.0
    bottom: float = 1.0
    left: float = 1.0
    right: float = 1.0


@dataclass(frozen=True)
class EngineParams:
    """The engine settings a task was accepted under, where they shape the video: recorded at
    submission, so a retry (on any worker, after a settings change or a restart) makes the
    video the client asked for. None = the loaded model's own default."""

    num_frames: int
    fps: int
    guidance_scale: float | None  # None: the preset's (older rows always recorded one)
    num_inference_steps: int | None = None
    flow_shift: float | None = None
    generation_area: int | None = None
    preset: str | None = None  # VACE_PRESET at submission; None in older rows

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineParams:
        return cls(
            num_frames=settings.engine.num_frames,
            fps=settings.engine.fps,
            guidance_scale=settings.engine.guidance_scale,
            num_inference_steps=settings.engine.num_inference_steps,
            flow_shift=settings.engine.flow_shift,
            generation_area=settings.engine.generation_area,
            preset=settings.engine.preset,
        )


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to run a task, already validated and normalised.

    `seed` is always set (drawn at submission when the client gave none), so a retried
    task produces the same video; so is `engine` for tasks accepted by the API (None in rows
    written before it was recorded: the worker's settings apply). `size` is (width, height)
    where the function takes one. `model_name` is the model as the client named it (shown in
    task lists) and `upload_model` the key its `oss://` uploads are bound to; the API sets both
    ("" for a task that no client named a model for).
    """

    function: VaceFunction
    prompt: str
    seed: int
    model_name: str = ""
    upload_model: str = ""
    negative_prompt: str | None = None
    prompt_extend: bool = True
    watermark: bool = False
    size: tuple[int, int] | None = None
    references: tuple[Reference, ...] = ()
    video_url: str | None = None
    mask_image_url: str | None = None
    mask_video_url: str | None = None
    mask_frame_id: int = 1
    mask_type: MaskType = MaskType.TRACKING
    expand_mode: ExpandMode = ExpandMode.HULL
    expand_ratio: float = 0.05
    first_frame_url: str | None = None
    last_frame_url: str | None = None
    first_clip_url: str | None = None
    last_clip_url: str | None = None
    control: Control | None = None
    strength: float = 1.0
    outpaint: Outpaint = Outpaint()
    engine: EngineParams | None = None

    def to_json(self) -> str:
        return json.dumps(_plain(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        raw: dict[str, Any] = json.loads(text)
        # Rows written before `upload_model` was recorded: the model as the client named it
        # (the same key for the canonical name; a task of that age still pending that names the
        # other one would not find its `oss://` uploads).
        raw.setdefault("upload_model", raw.get("model_name", ""))
        raw["function"] = VaceFunction(raw["function"])
        raw["size"] = tuple(raw["size"]) if raw.get("size") else None
        raw["references"] = tuple(
            Reference(url=r["url"], role=ReferenceRole(r["role"])) for r in raw["references"]
        )
        raw["mask_type"] = MaskType(raw["mask_type"])
        raw["expand_mode"] = ExpandMode(raw["expand_mode"])
        raw["control"] = Control(raw["control"]) if raw.get("control") else None
        raw["outpaint"] = Outpaint(**raw["outpaint"])
        raw["engine"] = EngineParams(**raw["engine"]) if raw.get("engine") else None
        return cls(**raw)


def _plain(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copy of every leaf (a spec's leaves are immutable
    str / int / float / enum values), which made it most of a create request's cost."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
