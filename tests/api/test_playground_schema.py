"""The playground's schema (/playground/schema.json): it is the validator's own tables, the
Node tests' fixture is exactly what is served, and the per-function field lists say what
`parse_create_request` really reads."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vace_server.annotators.registry import load_annotators
from vace_server.api import validation
from vace_server.api.playground_schema import (
    PLAYGROUND_MODEL,
    annotator_availability,
    build_schema,
    schema_json,
)
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.waiting import queued_progress
from vace_server.api.wire_fields import FUNCTION_FIELDS, MAX_SCENE_REFERENCES
from vace_server.api.wire_names import MODEL_NAMES
from vace_server.api.wire_values import DEFAULT_SIZE, SIZES
from vace_server.errors import InvalidParameter
from vace_server.settings import Settings
from vace_server.tasks.progress import STAGE_LABELS, STAGE_SPANS, Stage
from vace_server.tasks.spec import TaskSpec, VaceFunction

FIXTURE = Path(__file__).resolve().parents[1] / "js" / "fixtures" / "schema.json"
STATIC_JS = Path(validation.__file__).resolve().parent / "static" / "js"
SCHEMA = build_schema()
FUNCTIONS = {f["name"]: f for f in SCHEMA["functions"]}
URL = "http://media.example/a"
# Not a valid value for any field: a JSON object.
GARBAGE: dict[str, Any] = {"not": "a value"}


def test_the_fixture_is_the_served_schema() -> None:
    assert FIXTURE.read_bytes() == schema_json(), (
        "tests/js/fixtures/schema.json is stale: "
        "python -m vace_server.api.playground_schema > tests/js/fixtures/schema.json"
    )


def test_functions_are_the_validators_table() -> None:
    assert list(FUNCTIONS) == [f.value for f in VaceFunction] == list(validation.FUNCTIONS)
    for function, fields in FUNCTION_FIELDS.items():
        served = FUNCTIONS[function.value]
        assert served["inputs"] == list(fields.inputs)
        assert served["parameters"] == list(fields.parameters)
        assert served["required"] == list(fields.required)
        assert served["one_of"] == list(fields.one_of)
        assert served["max_references"] == fields.max_references
        if fields.controls:
            assert served["control"] == {
                "choices": list(fields.controls),
                "required": fields.control_rule.value,
            }
        else:
            assert served["control"] is None


def test_choices_defaults_and_limits_are_the_validators() -> None:
    assert SCHEMA["model"] == PLAYGROUND_MODEL and PLAYGROUND_MODEL in MODEL_NAMES
    assert SCHEMA["models"] == sorted(MODEL_NAMES)
    assert SCHEMA["choices"] == {
        "size": list(SIZES),
        "obj_or_bg": list(validation.ROLES),
        "mask_type": list(validation.MASK_TYPES),
        "expand_mode": list(validation.EXPAND_MODES),
    }
    defaults = SCHEMA["defaults"]
    assert SIZES[defaults["size"]] == DEFAULT_SIZE
    assert defaults["mask_type"] == validation.DEFAULT_MASK_TYPE.value
    assert defaults["expand_mode"] == validation.DEFAULT_EXPAND_MODE.value
    assert defaults["mask_frame_id"] == validation.DEFAULT_MASK_FRAME_ID
    assert {k: defaults[k] for k in validation.BOOL_DEFAULTS} == validation.BOOL_DEFAULTS
    assert SCHEMA["numbers"] == {
        key: {"default": r.default, "low": r.low, "high": r.high}
        for key, r in NUMBER_FIELDS.items()
    }
    assert SCHEMA["integers"]["seed"] == {"low": 0, "high": validation.SEED_MAX}
    assert SCHEMA["limits"] == {
        "prompt_chars": validation.MAX_PROMPT_CHARS,
        "negative_prompt_chars": validation.MAX_NEGATIVE_PROMPT_CHARS,
        "scene_references": MAX_SCENE_REFERENCES,
        "duration_seconds": validation.FIXED_DURATION,
    }


def test_the_defaults_are_what_an_absent_field_becomes() -> None:
    edit = _parse(_minimal("video_edit"))
    assert edit.mask_type.value == SCHEMA["defaults"]["mask_type"]
    assert edit.expand_mode.value == SCHEMA["defaults"]["expand_mode"]
    assert edit.mask_frame_id == SCHEMA["defaults"]["mask_frame_id"]
    assert edit.size == SIZES[SCHEMA["defaults"]["size"]]
    assert edit.expand_ratio == SCHEMA["numbers"]["expand_ratio"]["default"]
    assert edit.prompt_extend is SCHEMA["defaults"]["prompt_extend"]
    assert edit.watermark is SCHEMA["defaults"]["watermark"]
    assert _parse(_minimal("video_repainting")).strength == SCHEMA["numbers"]["strength"]["default"]


def test_stages_are_queued_then_the_workers() -> None:
    stages = SCHEMA["stages"]
    assert stages[0] == {"name": "queued", "label": "Queued", "start": None, "end": None}
    assert stages[1:] == [
        {
            "name": stage.value,
            "label": STAGE_LABELS[stage],
            "start": STAGE_SPANS[stage].start,
            "end": STAGE_SPANS[stage].end,
        }
        for stage in Stage
        if stage is not Stage.QUEUED
    ]
    # Every stage has a label, and the running stages' spans tile 0..100 in order.
    assert [s["name"] for s in stages] == [stage.value for stage in Stage]
    running = stages[1:]
    assert running[0]["start"] == 0 and running[-1]["end"] == 100
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(running))
    # The stage a PENDING task reports is the schema's first one.
    context: Any = SimpleNamespace(
        settings=Settings(),
        store=SimpleNamespace(queue_position=lambda task, models=None: 1),
        workers=SimpleNamespace(failures=lambda: []),
    )
    task: Any = SimpleNamespace()
    assert queued_progress(context, task)["stage"] == stages[0]["name"]


def test_statuses() -> None:
    assert SCHEMA["statuses"] == {
        "active": ["PENDING", "RUNNING"],
        "final": ["SUCCEEDED", "FAILED", "CANCELED", "UNKNOWN"],
    }


# ------------------------------------------------- the field lists against the validator
def _minimal(function: str, *, one_of: str | None = None) -> dict[str, Any]:
    """The smallest valid body the schema describes (`one_of`: the member to give)."""
    spec = FUNCTIONS[function]
    inputs: dict[str, Any] = {"function": function, "prompt": "p"}
    for key in spec["required"]:
        inputs[key] = [URL] if key == "ref_images_url" else URL
    if spec["one_of"]:
        inputs[one_of or spec["one_of"][0]] = URL
    parameters: dict[str, Any] = {}
    if spec["control"] and spec["control"]["required"] == "always":
        parameters["control_condition"] = spec["control"]["choices"][0]
    return {"model": SCHEMA["model"], "input": inputs, "parameters": parameters}


def _parse(body: dict[str, Any]) -> TaskSpec:
    return validation.parse_create_request(
        json.dumps(body).encode(), oss_resolve=False, draw_seed=lambda: 1
    )


def _with(body: dict[str, Any], where: str, key: str, value: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(body))
    changed[where][key] = value
    return changed


def _where(function: str, key: str) -> str:
    return "input" if key in FUNCTIONS[function]["inputs"] else "parameters"


ALL_FIELDS = sorted({k for f in FUNCTIONS.values() for k in (*f["inputs"], *f["parameters"])})
CASES = [(fn, key) for fn in FUNCTIONS for key in ALL_FIELDS]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_minimal_body_the_schema_describes_is_valid(function: str) -> None:
    assert _parse(_minimal(function)).function.value == function


@pytest.mark.parametrize(("function", "key"), CASES)
def test_a_function_reads_exactly_the_fields_the_schema_lists(function: str, key: str) -> None:
    spec = FUNCTIONS[function]
    listed = key in spec["inputs"] or key in spec["parameters"]
    body = _minimal(function, one_of=key if key in spec["one_of"] else None)
    if not listed:
        # Where it would go for a function that reads it: ignored here, even as garbage.
        where = "input" if any(key in f["inputs"] for f in FUNCTIONS.values()) else "parameters"
        assert _parse(_with(body, where, key, GARBAGE)).function.value == function
        return
    where = _where(function, key)
    with pytest.raises(InvalidParameter) as raised:
        _parse(_with(body, where, key, GARBAGE))
    assert f"{where}.{key}" in raised.value.message


@pytest.mark.parametrize("function", FUNCTIONS)
def test_required_and_one_of_are_required(function: str) -> None:
    spec = FUNCTIONS[function]
    body = _minimal(function)
    for key in spec["required"]:
        del_body = json.loads(json.dumps(body))
        del del_body["input"][key]
        with pytest.raises(InvalidParameter, match="Field required: input"):
            _parse(del_body)
    if spec["one_of"]:
        for key in spec["one_of"]:
            body["input"].pop(key, None)
        with pytest.raises(InvalidParameter, match="Field required: input"):
            _parse(body)


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if FUNCTIONS[f]["control"]])
def test_the_control_rule_and_choices(function: str) -> None:
    control = FUNCTIONS[function]["control"]
    body = _minimal(function)
    for choice in control["choices"]:
        assert _parse(_with(body, "parameters", "control_condition", choice)).control
    others = set(FUNCTIONS["video_repainting"]["control"]["choices"]) - set(control["choices"])
    for choice in others:
        with pytest.raises(InvalidParameter):
            _parse(_with(body, "parameters", "control_condition", choice))
    without = _with(body, "parameters", "control_condition", "")
    with_video = _with(without, "input", "video_url", URL)
    expected = {"always": (True, True), "never": (False, False), "with_video_url": (False, True)}
    for required, case in zip(expected[control["required"]], (without, with_video), strict=True):
        if required:
            with pytest.raises(InvalidParameter, match="control_condition"):
                _parse(case)
        else:
            assert _parse(case).control is None


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if FUNCTIONS[f]["max_references"]])
def test_references_beyond_max_references_are_not_read(function: str) -> None:
    keep = FUNCTIONS[function]["max_references"]
    body = _with(_minimal(function), "input", "ref_images_url", [URL] * keep + [GARBAGE])
    if "obj_or_bg" in FUNCTIONS[function]["parameters"]:
        body["parameters"]["obj_or_bg"] = ["obj"] * keep
    assert len(_parse(body).references) == keep


# ------------------------------------------------- served
def test_the_page_its_modules_and_its_schema_need_no_key(client: TestClient) -> None:
    schema = client.get("/playground/schema.json")
    assert schema.status_code == 200
    assert schema.headers["content-type"] == "application/json"
    assert schema.json() == SCHEMA
    page = client.get("/playground")
    assert page.status_code == 200
    assert 'src="playground/static/js/main.js"' in page.text
    module = client.get("/playground/static/js/main.js")
    assert module.status_code == 200
    assert module.headers["content-type"] == "text/javascript; charset=utf-8"


def test_every_module_the_page_imports_is_served(client: TestClient) -> None:
    """From main.js, every relative `import ... from "./x.js"` resolves to a served module."""
    seen: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/playground/static/js/{name}")
        assert response.status_code == 200, name
        todo.extend(re.findall(r'from "\./([a-z_]+\.js)"', response.text))
    on_disk = {p.name for p in STATIC_JS.glob("*.js")}
    assert seen == on_disk  # and no module lies unused


@pytest.mark.parametrize(
    "path",
    [
        "/playground/static/app.js",  # the old single module is gone
        "/playground/static/js/package.json",  # only modules are served
        "/playground/static/js/missing.js",
        "/playground/static/js/..%2Fstyle.css",
        "/playground/static/js/Main.js",
    ],
)
def test_nothing_else_under_static_is_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


# ------------------------------------------------- annotators
def test_the_checkpoint_folders_are_the_registrys() -> None:
    """Each control the schema says needs a checkpoint is one load_annotators leaves out without
    VACE_ANNOTATOR_DIR, and its note names the schema's folder; scribble needs none."""
    annotators = load_annotators(Settings(device="cpu"))
    checkpoints = SCHEMA["annotators"]["checkpoints"]
    assert set(annotators.notes) == set(checkpoints)
    for control, folder in checkpoints.items():
        assert f"<annotator_dir>/{folder.rstrip('/')}" in annotators.notes[control]
    assert "scribble" not in checkpoints
    assert SCHEMA["annotators"]["setting"] == "VACE_ANNOTATOR_DIR"


def test_the_docs_section_it_names_lists_the_folders() -> None:
    page, section = SCHEMA["annotators"]["docs"].split(" §")
    text = (Path(__file__).resolve().parents[2] / page).read_text()
    body = text.split(f"### {section} ", 1)[1].split("\n## ", 1)[0]
    for folder in set(SCHEMA["annotators"]["checkpoints"].values()):
        assert f"  {folder}" in body


def test_availability_counts_the_workers_without_each_control() -> None:
    every = ["posebodyface", "posebody", "depth", "scribble"]
    rows: list[dict[str, Any]] = [
        {"controls": every},
        {"controls": ["scribble"]},
        {"model": "tiny"},  # an older worker: no controls reported, not counted
    ]
    assert annotator_availability(rows) == {
        "workers": 2,
        "missing": {"posebodyface": 1, "posebody": 1, "depth": 1},
    }
    assert annotator_availability([{"controls": every}]) == {"workers": 1, "missing": {}}
    assert annotator_availability([]) == {"workers": 0, "missing": {}}
