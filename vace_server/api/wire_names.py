"""DashScope wire names of what the layers below `api/` name internally: the task inputs
(`InputField`) and the model.

The one place they meet: every message the API shows (an error response, a FAILED task's
`output.message`, the same task in a webhook) goes through `wire_message`, and every task the
validator accepts carries the model its uploads are bound to (`canonical_model`).
tests/test_wire_names.py keeps these names out of every module below `api/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vace_server.errors import InputField, name_fields
from vace_server.settings import Settings

# Both upstream names of the VACE model are one model (docs/contract.md): accepted alike, shown
# as the client sent them, and one model for uploads (an upload of either serves a task of
# either).
MODEL_NAMES = frozenset({"wanx2.1-vace-plus", "wan2.1-vace-plus"})
CANONICAL_MODEL = "wanx2.1-vace-plus"

WIRE_NAMES: Mapping[InputField, str] = {
    InputField.VIDEO: "input.video_url",
    InputField.MASK_IMAGE: "input.mask_image_url",
    InputField.MASK_VIDEO: "input.mask_video_url",
    InputField.MASK_FRAME_ID: "input.mask_frame_id",
    InputField.REFERENCES: "input.ref_images_url",
    InputField.FIRST_FRAME: "input.first_frame_url",
    InputField.LAST_FRAME: "input.last_frame_url",
    InputField.FIRST_CLIP: "input.first_clip_url",
    InputField.LAST_CLIP: "input.last_clip_url",
    InputField.CONTROL: "parameters.control_condition",
    InputField.OUTPAINT_TOP: "parameters.top_scale",
    InputField.OUTPAINT_BOTTOM: "parameters.bottom_scale",
    InputField.OUTPAINT_LEFT: "parameters.left_scale",
    InputField.OUTPAINT_RIGHT: "parameters.right_scale",
}


def wire_name(field: InputField, key_only: bool = False) -> str:
    """`input.video_url`, or with `key_only` the key in its object (`video_url`)."""
    name = WIRE_NAMES[field]
    return name.split(".", 1)[1] if key_only else name


def wire_message(message: str) -> str:
    """A message as clients see it: each field mention replaced by its wire name. Messages
    without mentions (every message of older versions' rows among them) come back unchanged."""
    return name_fields(message, wire_name)


def canonical_model(name: str) -> str:
    """The model an upload is bound to and a task's uploads are looked up for: both VACE
    names give the same value."""
    return CANONICAL_MODEL if name in MODEL_NAMES else name


@dataclass(frozen=True)
class ServedNames:
    """The model names this deployment accepts, from `VACE_MODELS` (settings/models.py), and
    the one each name's uploads are bound to (its entry's own name). Without a registry:
    today's one model, both of its names (`MODEL_NAMES`, uploads under `CANONICAL_MODEL`)."""

    canonical: Mapping[str, str]  # every accepted name -> its model's own name

    @classmethod
    def default(cls) -> ServedNames:
        return cls({name: CANONICAL_MODEL for name in MODEL_NAMES})

    @classmethod
    def from_settings(cls, settings: Settings) -> ServedNames:
        entries = settings.engine.served_models
        if not entries:
            return cls.default()
        return cls({name: entry.name for entry in entries for name in entry.names})

    def accepts(self, name: object) -> bool:
        return isinstance(name, str) and name in self.canonical

    def upload_model(self, name: str) -> str:
        """The key `name`'s uploads are bound to (as `canonical_model` without a registry)."""
        return self.canonical.get(name, name)

    def models(self) -> list[str]:
        """Each served model's own name, sorted."""
        return sorted(set(self.canonical.values()))

    def names(self) -> list[str]:
        """Every accepted name, sorted."""
        return sorted(self.canonical)

    def aliases_of(self, model: str) -> tuple[str, ...]:
        """The names a client may give for `model` (its own among them)."""
        return tuple(sorted(n for n, own in self.canonical.items() if own == model))


DEFAULT_SERVED = ServedNames.default()
