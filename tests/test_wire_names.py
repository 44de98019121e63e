"""DashScope wire names stay in `api/` (docs/architecture.md): no module below it names a
request field by its wire path (`input.video_url`), a wire key that is no `TaskSpec`
attribute (`ref_images_url`), or a model name. They name inputs by `InputField`, and
`api/wire_names.py` writes the wire names in."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vace_server.api import validation
from vace_server.api.request_values import NUMBER_FIELDS
from vace_server.api.wire_names import MODEL_NAMES, WIRE_NAMES
from vace_server.tasks.spec import TaskSpec

PACKAGE = Path(__file__).resolve().parent.parent / "vace_server"
API = PACKAGE / "api"
# Above `api/` (they import it) and speaking DashScope to the user, each for a reason:
ABOVE_API = {
    # `vace-server generate`'s help names the field each option sets.
    "cli.py",
    # `generate` builds its TaskSpec directly, but through the API's own rules
    # (api.validation.parse_request_values): `OptionValues` answers them by request key
    # (`video_url`, `control_condition`, ...), so it names those keys.
    "oneshot/request.py",
    # `make demo` is a DashScope client of the server (over HTTP, through the SDK): its
    # requests are written in wire names, as any client's are.
    "demo/run.py",
}
_WIRE_PATH = re.compile(r"""["'](input|parameters)\.(\w+)""")


def _api_wire_keys() -> set[str]:
    """Every key api/ reads or names in `input` / `parameters`: its literal paths, the
    table of InputField names and the validator's field tables."""
    keys = {name.split(".", 1)[1] for name in WIRE_NAMES.values()}
    keys |= set(validation.PARAMETER_FALLBACK_FIELDS) | set(NUMBER_FIELDS)
    for path in API.glob("*.py"):
        keys |= {m.group(2) for m in _WIRE_PATH.finditer(path.read_text(encoding="utf-8"))}
    return keys


WIRE_KEYS = frozenset(_api_wire_keys())
SPEC_ATTRIBUTES = frozenset(f.name for f in dataclasses.fields(TaskSpec))
# Wire keys that are not also TaskSpec attribute names: as a whole string they are wire names.
FOREIGN_KEYS = WIRE_KEYS - SPEC_ATTRIBUTES
WIRE_PATH = re.compile(rf"\b(input|parameters)\.({'|'.join(sorted(WIRE_KEYS))})\b")


def _below_api() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if path.is_relative_to(API) or relative in ABOVE_API:
            continue
        yield path


def _strings(tree: ast.AST) -> Iterator[ast.Constant]:
    """String constants that are not docstrings (docstrings may explain a wire concept)."""
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in docstrings:
            continue
        if isinstance(node.value, str):
            yield node


def test_the_key_sets_are_not_empty() -> None:
    # guards the scan itself: a broken extraction would make every check pass
    assert {"video_url", "ref_images_url", "control_condition", "top_scale"} <= WIRE_KEYS
    assert {"ref_images_url", "control_condition", "obj_or_bg"} <= FOREIGN_KEYS
    assert len(list(_below_api())) > 50


@pytest.mark.parametrize(
    "path", list(_below_api()), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_no_wire_names_below_api(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for m in WIRE_PATH.finditer(text)]
    found += [name for name in MODEL_NAMES if name in text]
    found += [
        f"{node.value!r} (line {node.lineno})"
        for node in _strings(ast.parse(text))
        if node.value in FOREIGN_KEYS
    ]
    assert not found, f"DashScope wire names below api/ (name inputs by InputField): {found}"


def test_the_scan_finds_a_wire_name() -> None:
    sample = 'FIELD = "input.video_url"  # model wanx2.1-vace-plus\nKEY = "ref_images_url"\n'
    assert WIRE_PATH.search(sample)
    assert any(name in sample for name in MODEL_NAMES)
    assert [n.value for n in _strings(ast.parse(sample)) if n.value in FOREIGN_KEYS]
