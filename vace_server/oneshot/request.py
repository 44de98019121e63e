"""`vace-server generate` options → a TaskSpec, by the API's own request rules."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from vace_server.api.request_values import RequestValues
from vace_server.api.validation import SEED_MAX, parse_request_values
from vace_server.api.wire_media import check_url
from vace_server.api.wire_names import CANONICAL_MODEL
from vace_server.errors import ServiceError
from vace_server.tasks.spec import TaskSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

WIRE_MODEL = CANONICAL_MODEL
_REMOTE_SCHEMES = ("http://", "https://")


class UsageError(Exception):
    """A problem with the command line, found before any work (exit code 2): an unusable
    local file or --out, or a request the API would refuse with HTTP 400 (then `code` is the
    DashScope code and `message` its message)."""

    def __init__(self, message: str, *, code: str = "UsageError") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------- options → TaskSpec
@dataclass(frozen=True)
class OneShotOptions:
    """The command's options, one per request field (None / empty = not given).

    Media fields hold a local path, a `file://` URL or an http(s) URL."""

    out: Path
    function: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    refs: tuple[str, ...] = ()
    obj_or_bg: tuple[str, ...] = ()
    video: str | None = None
    mask: str | None = None
    mask_video: str | None = None
    mask_frame_id: int | None = None
    mask_type: str | None = None
    expand_mode: str | None = None
    expand_ratio: float | None = None
    first_frame: str | None = None
    last_frame: str | None = None
    first_clip: str | None = None
    last_clip: str | None = None
    control: str | None = None
    strength: float | None = None
    size: str | None = None
    top_scale: float | None = None
    bottom_scale: float | None = None
    left_scale: float | None = None
    right_scale: float | None = None
    seed: int | None = None
    watermark: bool | None = None
    prompt_extend: bool | None = None


# request field (its key in `input`) -> (option attribute, command-line flag), media first
_INPUT_MEDIA = {
    "video_url": ("video", "--video"),
    "mask_image_url": ("mask", "--mask"),
    "mask_video_url": ("mask_video", "--mask-video"),
    "first_frame_url": ("first_frame", "--first-frame"),
    "last_frame_url": ("last_frame", "--last-frame"),
    "first_clip_url": ("first_clip", "--first-clip"),
    "last_clip_url": ("last_clip", "--last-clip"),
}
_INPUT = {
    "function": "function",
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "mask_frame_id": "mask_frame_id",
}
# request field (its key in `parameters`) -> option attribute
_PARAMETERS = {
    "obj_or_bg": "obj_or_bg",
    "mask_type": "mask_type",
    "expand_mode": "expand_mode",
    "expand_ratio": "expand_ratio",
    "control_condition": "control",
    "strength": "strength",
    "size": "size",
    "top_scale": "top_scale",
    "bottom_scale": "bottom_scale",
    "left_scale": "left_scale",
    "right_scale": "right_scale",
    "seed": "seed",
    "watermark": "watermark",
    "prompt_extend": "prompt_extend",
}


def media_url(value: str, option: str) -> str:
    """The URL a media option's value goes into the TaskSpec as.

    A local path or a `file://` URL becomes the `file://` URL of the resolved file (read by
    `LocalMediaSource`). http(s) URLs, and strings with another scheme that name no local file
    (e.g. `oss://`), go as given, so the API's URL rules judge them like any client's.
    Raises: UsageError when the local file is missing or not a readable regular file."""
    if value.lower().startswith(_REMOTE_SCHEMES):
        return value
    if value.lower().startswith("file://"):
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"{option}: only local file:// URLs are supported: {value}")
        path = Path(unquote(parts.path))
    else:
        path = Path(value).expanduser()
        if "://" in value and not path.exists():
            return value
    if not path.is_file():
        what = "is not a file" if path.exists() else "no such file"
        raise UsageError(f"{option}: {what}: {value}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"{option}: cannot read {value}")
    return path.resolve().as_uri()


def local_path(url: str) -> Path | None:
    """The file behind a `file://` URL made by `media_url`; None for any other URL."""
    if not url.startswith("file://"):
        return None
    return Path(unquote(urlsplit(url).path))


@dataclass(frozen=True)
class OptionValues(RequestValues):
    """The options as the request rules read them: a request field's value is its option's
    (tuples as lists, empty as absent), media options already through `media_url`."""

    options: OneShotOptions
    media: Mapping[str, Any]  # `input` key -> URL, or list of URLs for the references

    @classmethod
    def of(cls, options: OneShotOptions) -> OptionValues:
        """Raises: UsageError for an unusable local file (before any rule is checked)."""
        media: dict[str, Any] = {}
        if options.refs:
            media["ref_images_url"] = [media_url(v, "--ref") for v in options.refs]
        for key, (attr, flag) in _INPUT_MEDIA.items():
            value = getattr(options, attr)
            if value is not None:
                media[key] = media_url(value, flag)
        return cls(options=options, media=media)

    def inp(self, key: str) -> Any:
        if key in self.media:
            return self.media[key]
        return self._option(_INPUT.get(key))

    def param(self, key: str) -> Any:
        return self._option(_PARAMETERS.get(key))

    def check_url(self, value: Any, field: str) -> str:
        if isinstance(value, str) and local_path(value) is not None:
            return value  # a local file `media_url` checked
        return check_url(value, field, oss_resolve=False)  # no upload store to resolve oss://

    def _option(self, attr: str | None) -> Any:
        value = None if attr is None else getattr(self.options, attr)
        if isinstance(value, tuple):
            return list(value) or None
        return value


def check_out_path(out: Path) -> Path:
    out = out.expanduser()
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; give a file name such as {out / 'out.mp4'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")
    return out


def build_spec(values: OptionValues) -> TaskSpec:
    """The TaskSpec the API would accept for these options (no `oss://` resolution: there is
    no upload store here). Raises: UsageError carrying the DashScope code and message."""
    try:
        return parse_request_values(
            values, model_name=WIRE_MODEL, draw_seed=lambda: secrets.randbelow(SEED_MAX + 1)
        )
    except ServiceError as exc:
        raise UsageError(exc.message, code=exc.code) from exc
