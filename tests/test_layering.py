"""The package graph of `vace_server` runs one way: acyclic, and as docs/architecture.md's
"Layers" table says (each package imports only the packages its row names, all of a lower
layer).

Imports are read with `ast`, never executed, so lazy imports inside functions and those under
`TYPE_CHECKING` count as well: they are dependencies all the same. Run this file as a script
(`python tests/test_layering.py`) to print the package graph.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vace_server"
ARCHITECTURE = REPO / "docs" / "architecture.md"
ROOT = "vace_server"
ANY_LOWER = "any lower layer"


@dataclass(frozen=True)
class Import:
    """One import statement of a module of ours that names another package of ours."""

    where: str  # the importing file, e.g. vace_server/media/images.py
    line: int
    module: str  # the dotted module imported, e.g. vace_server.storage.uploads
    source_package: str  # e.g. media
    target_package: str  # e.g. storage

    def __str__(self) -> str:
        return f"{self.where}:{self.line} imports {self.module}"


@dataclass(frozen=True)
class Layer:
    level: int
    allowed: frozenset[str] | None  # None: any package of a lower layer


# ------------------------------------------------------------------ reading the code
def package_of(parts: tuple[str, ...]) -> str:
    """The package a module belongs to, from its dotted parts below `vace_server`: the first
    part ("media" for media.images; "clock" for the module clock); "" for the root itself."""
    return parts[0] if parts else ""


def module_parts(path: Path, root: Path) -> tuple[str, ...]:
    """Dotted parts of the module at `path` below `root` (a package's __init__ is the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_ours(root: Path, parts: tuple[str, ...]) -> bool:
    """True when `parts` (below the root) name a module or package that exists in `root`."""
    target = root.joinpath(*parts)
    return target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()


def _imported_modules(node: ast.AST, path: Path, root: Path) -> Iterator[tuple[str, ...]]:
    """Dotted parts (below the root) of what an Import / ImportFrom node brings in from us."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            head, *rest = alias.name.split(".")
            if head == root.name:
                yield tuple(rest)
        return
    if not isinstance(node, ast.ImportFrom):
        return
    if node.level:  # relative: from the importing module's package, `level - 1` up
        here = path.relative_to(root).parts[:-1]
        base = here[: len(here) - (node.level - 1)]
        if node.level - 1 > len(here):
            return
        base_parts = tuple(base) + tuple(node.module.split(".") if node.module else ())
    else:
        head, *rest = (node.module or "").split(".")
        if head != root.name:
            return
        base_parts = tuple(rest)
    # `from vace_server import errors` names the module errors; `from .x import name` names x.
    subs = [(*base_parts, a.name) for a in node.names if _is_ours(root, (*base_parts, a.name))]
    yield from subs or [base_parts]


def imports_in(root: Path) -> list[Import]:
    """Every import in the package at `root` from one of its packages to another."""
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        source = package_of(module_parts(path, root))
        where = path.relative_to(root.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for parts in _imported_modules(node, path, root):
                target = package_of(parts)
                if target and target != source:
                    module = ".".join((root.name, *parts))
                    found.append(Import(where, getattr(node, "lineno", 0), module, source, target))
    return found


def packages_in(root: Path) -> set[str]:
    """Subpackages and top-level modules of the package at `root` (its __init__ excluded)."""
    names = {p.parent.name for p in root.glob("*/__init__.py")}
    names |= {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    return names


def graph_of(found: list[Import]) -> dict[str, dict[str, list[Import]]]:
    """source package -> target package -> the imports making that edge."""
    graph: dict[str, dict[str, list[Import]]] = {}
    for imp in found:
        graph.setdefault(imp.source_package, {}).setdefault(imp.target_package, []).append(imp)
    return graph


def find_cycle(graph: Mapping[str, Mapping[str, object]]) -> list[str] | None:
    """A cycle of packages (first == last) when the graph has one, else None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, {})):
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


# ------------------------------------------------------------------ reading the doc
_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([\w.]+)`\s*\|\s*(.+?)\s*\|\s*$")


def documented_layers(markdown: str) -> dict[str, Layer]:
    """The "Layers" table of docs/architecture.md: package -> its layer and allowed imports."""
    section = markdown.split("\n## Layers\n", 1)
    if len(section) < 2:
        raise AssertionError("docs/architecture.md has no '## Layers' section")
    body = section[1].split("\n## ", 1)[0]
    layers: dict[str, Layer] = {}
    for line in body.splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        level, package, allowed = int(match[1]), match[2], match[3].strip()
        if allowed == ANY_LOWER:
            layers[package] = Layer(level, None)
        elif allowed == "nothing":
            layers[package] = Layer(level, frozenset())
        else:
            layers[package] = Layer(level, frozenset(re.findall(r"`([\w.]+)`", allowed)))
    return layers


def violations(found: list[Import], layers: Mapping[str, Layer]) -> list[str]:
    """One readable line per import the layers do not allow."""
    lines: list[str] = []
    for imp in found:
        source, target = layers.get(imp.source_package), layers.get(imp.target_package)
        if source is None or target is None:
            missing = imp.source_package if source is None else imp.target_package
            lines.append(f"{imp}: package {missing!r} has no row in the Layers table")
            continue
        if source.allowed is None:
            if target.level >= source.level:
                lines.append(
                    f"{imp}: {imp.source_package} (layer {source.level}) may import only lower "
                    f"layers; {imp.target_package} is layer {target.level}"
                )
        elif imp.target_package not in source.allowed:
            names = ", ".join(sorted(source.allowed)) or "nothing of ours"
            lines.append(f"{imp}: {imp.source_package} may import only {names}")
    return lines


def format_graph(graph: Mapping[str, Mapping[str, object]]) -> str:
    return "\n".join(f"{s} -> {', '.join(sorted(graph[s]))}" for s in sorted(graph))


# ------------------------------------------------------------------ the checks on this repo
@pytest.fixture(scope="module")
def found() -> list[Import]:
    return imports_in(PACKAGE)


@pytest.fixture(scope="module")
def layers() -> dict[str, Layer]:
    return documented_layers(ARCHITECTURE.read_text(encoding="utf-8"))


def test_the_package_graph_is_acyclic(found: list[Import]) -> None:
    graph = graph_of(found)
    cycle = find_cycle(graph)
    if cycle:
        edges = [
            f"  {a} -> {b}: " + "; ".join(str(i) for i in graph[a][b][:3])
            for a, b in itertools.pairwise(cycle)
        ]
        pytest.fail("package import cycle " + " -> ".join(cycle) + "\n" + "\n".join(edges))


def test_every_package_has_a_row_in_the_layers_table(layers: dict[str, Layer]) -> None:
    missing = sorted(packages_in(PACKAGE) - set(layers))
    stale = sorted(set(layers) - packages_in(PACKAGE))
    assert not missing, f"docs/architecture.md Layers table lacks a row for {missing}"
    assert not stale, f"docs/architecture.md Layers table names packages that do not exist: {stale}"


def test_the_documented_layers_point_down(layers: dict[str, Layer]) -> None:
    wrong = [
        f"{name} (layer {layer.level}) may import {other}, "
        + (f"of layer {layers[other].level}" if other in layers else "which has no row")
        for name, layer in sorted(layers.items())
        for other in sorted(layer.allowed or ())
        if other not in layers or layers[other].level >= layer.level
    ]
    assert not wrong, "the Layers table must only allow imports of lower layers:\n" + "\n".join(
        wrong
    )


def test_every_import_is_allowed_by_the_layers_table(
    found: list[Import], layers: dict[str, Layer]
) -> None:
    bad = violations(found, layers)
    assert not bad, (
        "imports against docs/architecture.md's Layers table (move the code, or change the "
        "table if the new dependency is meant):\n" + "\n".join(bad)
    )


def test_the_root_package_imports_nothing(found: list[Import]) -> None:
    # Whatever vace_server/__init__.py imported, every package would depend on.
    assert [str(i) for i in found if i.source_package == ""] == []


# ------------------------------------------------------------------ the checker can fail
def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / ROOT
    for name, text in files.items():
        path = pkg / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


def test_the_checker_finds_cycles_and_names_the_import(tmp_path: Path) -> None:
    pkg = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "clock.py": "",
            "engine/__init__.py": "",
            "engine/loader.py": "from vace_server.functions.base import X\n",
            "functions/__init__.py": "",
            "functions/base.py": "X = 1\n",
            "functions/common.py": (
                "from vace_server import clock\n"
                "def f():\n    from ..engine import loader\n"  # lazy and relative
            ),
        },
    )
    found = imports_in(pkg)
    graph = graph_of(found)
    assert {s: sorted(t) for s, t in graph.items()} == {
        "engine": ["functions"],
        "functions": ["clock", "engine"],
    }
    assert find_cycle(graph) == ["engine", "functions", "engine"]
    lazy = graph["functions"]["engine"][0]
    assert str(lazy) == "vace_server/functions/common.py:3 imports vace_server.engine.loader"


def test_the_checker_reports_imports_the_table_does_not_allow(tmp_path: Path) -> None:
    pkg = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "errors.py": "",
            "media/__init__.py": "",
            "media/images.py": "import vace_server.errors\nfrom vace_server.storage import x\n",
            "storage/__init__.py": "",
            "storage/x.py": "from ..media import images\n",
            "api.py": "from vace_server.media.images import y\n",
        },
    )
    doc = (
        "# A\n\n## Layers\n\n| Layer | Package | May import (of ours) |\n| --- | --- | --- |\n"
        "| 0 | `errors` | nothing |\n| 1 | `media` | `errors` |\n"
        "| 1 | `storage` | any lower layer |\n\n## Next\n| 9 | `api` | nothing |\n"
    )
    layers = documented_layers(doc)
    assert set(layers) == {"errors", "media", "storage"}  # rows after the section don't count
    assert violations(imports_in(pkg), layers) == [
        "vace_server/api.py:1 imports vace_server.media.images: package 'api' has no row in "
        "the Layers table",
        "vace_server/media/images.py:2 imports vace_server.storage.x: media may import only errors",
        "vace_server/storage/x.py:1 imports vace_server.media.images: storage (layer 1) may "
        "import only lower layers; media is layer 1",
    ]


if __name__ == "__main__":
    print(format_graph(graph_of(imports_in(PACKAGE))))
    if "-v" in sys.argv:
        for imp in imports_in(PACKAGE):
            print(f"  {imp.source_package} -> {imp.target_package}: {imp}")
