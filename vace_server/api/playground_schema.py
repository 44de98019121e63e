"""The playground's schema: everything the page needs to build its form, read from the very
objects the create-request validator and the worker use, so the page cannot drift from them.

Served as JSON at `/playground/schema.json`; `python -m vace_server.api.playground_schema`
prints it (tests/js/fixtures/schema.json is that output, for the Node tests).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from vace_server.annotators.registry import CHECKPOINT_FOLDERS
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.validation import (
    BOOL_DEFAULTS,
    DEFAULT_EXPAND_MODE,
    DEFAULT_MASK_FRAME_ID,
    DEFAULT_MASK_TYPE,
    EXPAND_MODES,
    FIXED_DURATION,
    MASK_TYPES,
    MAX_NEGATIVE_PROMPT_CHARS,
    MAX_PROMPT_CHARS,
    ROLES,
    SEED_MAX,
)
from vace_server.api.wire_fields import FUNCTION_FIELDS, MAX_SCENE_REFERENCES, FunctionFields
from vace_server.api.wire_names import MODEL_NAMES
from vace_server.api.wire_values import DEFAULT_SIZE, INT32_MAX, SIZES
from vace_server.functions.common import VIDEO_SECONDS
from vace_server.functions.video_extension import CLIP_SECONDS
from vace_server.media.images import (
    ALLOWED_FORMATS_TEXT,
    IMAGE_MAX_BYTES,
    IMAGE_MAX_SIDE,
    IMAGE_MIN_SIDE,
)
from vace_server.media.video import VIDEO_MAX_BYTES, VIDEO_MIN_FPS
from vace_server.tasks.progress import STAGE_LABELS, STAGE_SPANS, Stage
from vace_server.tasks.spec import Control
from vace_server.tasks.status import TaskStatus

# The name the page sends: the one DashScope's documentation uses (both names are accepted).
PLAYGROUND_MODEL = "wanx2.1-vace-plus"

# The controls backed by a checkpoint, and its sub-folder of VACE_ANNOTATOR_DIR: the
# registry's own table (docs/model-inputs.md §5.6 lists it). The page names these, never a
# path of the server's file system.
CONTROL_CHECKPOINTS: dict[str, str] = {
    control: f"{folder}/" for control, folder in CHECKPOINT_FOLDERS.items()
}
ANNOTATOR_SETTING = "VACE_ANNOTATOR_DIR"
ANNOTATOR_DOCS = "docs/model-inputs.md §5.6"


def build_schema() -> dict[str, Any]:
    """The schema as a JSON-ready dict (plain lists, strings and numbers; stable order)."""
    return {
        "model": PLAYGROUND_MODEL,
        "models": sorted(MODEL_NAMES),
        "functions": [_function(fn.value, fields) for fn, fields in FUNCTION_FIELDS.items()],
        "choices": {
            "size": list(SIZES),
            "obj_or_bg": list(ROLES),
            "mask_type": list(MASK_TYPES),
            "expand_mode": list(EXPAND_MODES),
        },
        "defaults": {
            "size": _size_name(DEFAULT_SIZE),
            "mask_type": DEFAULT_MASK_TYPE.value,
            "expand_mode": DEFAULT_EXPAND_MODE.value,
            "mask_frame_id": DEFAULT_MASK_FRAME_ID,
            **BOOL_DEFAULTS,
        },
        "numbers": {key: asdict(bounds) for key, bounds in NUMBER_FIELDS.items()},
        "integers": {
            "seed": {"low": 0, "high": SEED_MAX},
            "mask_frame_id": {"low": DEFAULT_MASK_FRAME_ID, "high": INT32_MAX},
        },
        "limits": {
            "prompt_chars": MAX_PROMPT_CHARS,
            "negative_prompt_chars": MAX_NEGATIVE_PROMPT_CHARS,
            "scene_references": MAX_SCENE_REFERENCES,
            "duration_seconds": FIXED_DURATION,
        },
        "media": {
            "image": {
                "formats": ALLOWED_FORMATS_TEXT,
                "min_side": IMAGE_MIN_SIDE,
                "max_side": IMAGE_MAX_SIDE,
                "max_bytes": IMAGE_MAX_BYTES,
            },
            "video": {
                "min_fps": VIDEO_MIN_FPS,
                "max_bytes": VIDEO_MAX_BYTES,
                "seconds": VIDEO_SECONDS,
            },
            "clip": {"seconds": CLIP_SECONDS},
        },
        # The page polls while a task is active and stops at a final status (UNKNOWN included:
        # the task is gone or belongs to another key).
        "statuses": {
            "active": [s.value for s in TaskStatus if not _final(s)],
            "final": [s.value for s in TaskStatus if _final(s)],
        },
        "stages": [_stage(stage) for stage in Stage],
        # What a control needs; which workers have it is live: /playground/annotators.json.
        "annotators": {
            "setting": ANNOTATOR_SETTING,
            "docs": ANNOTATOR_DOCS,
            "checkpoints": dict(CONTROL_CHECKPOINTS),
        },
    }


def annotator_availability(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """From the live workers' registry rows: how many report their controls (`workers`), and
    for each control some of them lack, how many lack it (`missing`). Rows without a
    `controls` list (older workers) are not counted; no counted worker: nothing is known."""
    reported = [set(w["controls"]) for w in workers if isinstance(w.get("controls"), list)]
    missing = {
        c.value: sum(1 for have in reported if c.value not in have)
        for c in Control
        if any(c.value not in have for have in reported)
    }
    return {"workers": len(reported), "missing": missing}


def _stage(stage: Stage) -> dict[str, Any]:
    """A progress stage: its name, what a person is shown, and its percent span (none for
    `queued`: nothing of a waiting task has run)."""
    span = STAGE_SPANS.get(stage)
    return {
        "name": stage.value,
        "label": STAGE_LABELS[stage],
        "start": None if span is None else span.start,
        "end": None if span is None else span.end,
    }


def _function(name: str, fields: FunctionFields) -> dict[str, Any]:
    control = None
    if fields.controls:
        control = {"choices": list(fields.controls), "required": fields.control_rule.value}
    return {
        "name": name,
        "inputs": list(fields.inputs),
        "parameters": list(fields.parameters),
        "required": list(fields.required),
        "one_of": list(fields.one_of),
        "control": control,
        "max_references": fields.max_references,
    }


def _final(status: TaskStatus) -> bool:
    return status.is_terminal or status is TaskStatus.UNKNOWN


def _size_name(size: tuple[int, int]) -> str:
    return next(name for name, value in SIZES.items() if value == size)


def schema_json() -> bytes:
    """The served bytes (also the Node tests' fixture)."""
    return (json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n").encode()


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(schema_json())
