"""The stored form of a TaskSpec: `to_json` writes exactly what `dataclasses.asdict` would (its
faster walk must not change a stored byte) and `from_json` reads it back."""

from __future__ import annotations

import dataclasses
import json

from vace_server.tasks.spec import (
    Control,
    EngineParams,
    Outpaint,
    Reference,
    ReferenceRole,
    TaskSpec,
    VaceFunction,
)

FULL = TaskSpec(
    function=VaceFunction.VIDEO_EDIT,
    prompt="一只猫 on a mat",
    seed=11,
    model_name="wanx2.1-vace-plus",
    upload_model="wanx2.1-vace-plus",
    negative_prompt="blur",
    size=(832, 480),
    references=(
        Reference("http://example.com/a.png", ReferenceRole.SUBJECT),
        Reference("http://example.com/b.png", ReferenceRole.SCENE),
    ),
    video_url="http://example.com/v.mp4",
    control=Control.DEPTH,
    outpaint=Outpaint(top=1.5, left=1.25),
    engine=EngineParams(num_frames=17, fps=16, guidance_scale=5.0, generation_area=1024),
)


def test_to_json_is_byte_for_byte_what_asdict_gives() -> None:
    for spec in (FULL, TaskSpec(function=VaceFunction.IMAGE_REFERENCE, prompt="p", seed=1)):
        expected = json.dumps(dataclasses.asdict(spec), ensure_ascii=False, sort_keys=True)
        assert spec.to_json() == expected


def test_the_stored_form_reads_back() -> None:
    assert TaskSpec.from_json(FULL.to_json()) == FULL
