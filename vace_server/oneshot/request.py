"""`vace-server generate` options → the DashScope create body, validated as the API does."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from vace_server.api.validation import SEED_MAX, parse_create_request
from vace_server.api.wire_names import CANONICAL_MODEL
from vace_server.errors import ServiceError
from vace_server.tasks.spec import TaskSpec

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

WIRE_MODEL = CANONICAL_MODEL
PLACEHOLDER_HOST = "vace-oneshot.invalid"
_REMOTE_SCHEMES = ("http://", "https://")


class UsageError(Exception):
    """A problem with the command line, found before any work (exit code 2): an unusable
    local file or --out, or a request the API would refuse with HTTP 400 (then `code` is the
    DashScope code and `message` its message)."""

    def __init__(self, message: str, *, code: str = "UsageError") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# ---------------------------------------------------------------- options → request body
@dataclass(frozen=True)
class OneShotOptions:
    """The command's options, one per DashScope field (None / empty = not sent).

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


# option attribute -> (command-line flag, wire field in `input`)
_INPUT_MEDIA = {
    "video": ("--video", "video_url"),
    "mask": ("--mask", "mask_image_url"),
    "mask_video": ("--mask-video", "mask_video_url"),
    "first_frame": ("--first-frame", "first_frame_url"),
    "last_frame": ("--last-frame", "last_frame_url"),
    "first_clip": ("--first-clip", "first_clip_url"),
    "last_clip": ("--last-clip", "last_clip_url"),
}
# option attribute -> wire field in `parameters`
_PARAMETERS = {
    "mask_type": "mask_type",
    "expand_mode": "expand_mode",
    "expand_ratio": "expand_ratio",
    "control": "control_condition",
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


class LocalFiles:
    """Placeholder URLs for local files (see the module docstring) and the way back."""

    def __init__(self) -> None:
        self._prefix = f"http://{PLACEHOLDER_HOST}/{secrets.token_hex(8)}/"
        self._paths: dict[str, Path] = {}

    def wire_value(self, value: str, option: str) -> str:
        """What to put in the body for a media option's value.

        http(s) URLs, and strings with another scheme that name no local file (e.g. `oss://`),
        go as given, so the validator judges them like any client's. Local paths and `file://`
        URLs get a placeholder. Raises: UsageError when the local file is missing or not a
        readable regular file."""
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
        url = f"{self._prefix}{len(self._paths)}"
        self._paths[url] = path.resolve()
        return url

    def path(self, url: str) -> Path | None:
        """The local file behind a placeholder URL; None for any other URL."""
        return self._paths.get(url)


def build_body(options: OneShotOptions, files: LocalFiles) -> bytes:
    """The DashScope create body for `options` (fields that were not given are left out).

    Raises: UsageError for an unusable local file."""
    wire_input: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    if options.function is not None:
        wire_input["function"] = options.function
    if options.prompt is not None:
        wire_input["prompt"] = options.prompt
    if options.negative_prompt is not None:
        wire_input["negative_prompt"] = options.negative_prompt
    if options.refs:
        wire_input["ref_images_url"] = [files.wire_value(v, "--ref") for v in options.refs]
    for attr, (flag, wire) in _INPUT_MEDIA.items():
        value = getattr(options, attr)
        if value is not None:
            wire_input[wire] = files.wire_value(value, flag)
    if options.mask_frame_id is not None:
        wire_input["mask_frame_id"] = options.mask_frame_id
    if options.obj_or_bg:
        parameters["obj_or_bg"] = list(options.obj_or_bg)
    for attr, wire in _PARAMETERS.items():
        value = getattr(options, attr)
        if value is not None:
            parameters[wire] = value
    body = {"model": WIRE_MODEL, "input": wire_input, "parameters": parameters}
    return json.dumps(body, ensure_ascii=False).encode()


def check_out_path(out: Path) -> Path:
    out = out.expanduser()
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; give a file name such as {out / 'out.mp4'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")
    return out


def validate_body(body: bytes) -> TaskSpec:
    """`parse_create_request` as the API runs it (no `oss://` resolution: there is no upload
    store here). Raises: UsageError carrying the DashScope code and message."""
    try:
        return parse_create_request(
            body, oss_resolve=False, draw_seed=lambda: secrets.randbelow(SEED_MAX + 1)
        )
    except ServiceError as exc:
        raise UsageError(exc.message, code=exc.code) from exc
