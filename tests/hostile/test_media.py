"""Hostile and odd media (tests/hostile/media_corpus.py): each answers its InvalidFile code
(or is accepted, for odd but valid files) and none costs more than a little memory to refuse.

The corpus runs once, in a fresh Python process, so its peak-memory figures are its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.media_corpus import CASES, Case

# The corpus runs once in a fresh process: about 20 s.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAX_GROWTH_MB = 64
"""How far feeding one case may raise the peak RSS. Decoding any of the bombs would cost far
more (a 13000x13000 mask alone is 161 MB as 8-bit grey, a 20000x20000 PNG 381 MB)."""


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile.media_corpus"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {row.get("name", "summary"): row for row in rows}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case_answers_its_code_within_memory(case: Case, results: dict[str, Any]) -> None:
    row = results[case.name]
    assert row["code"] == case.expect, row["detail"]
    if case.expect not in ("ok", "InvalidFile.Openerror"):  # Openerror's text is literal
        assert "input." in row["detail"] or "resolution" in row["detail"], row["detail"]
    assert row["grew_mb"] < MAX_GROWTH_MB, f"{case.name}: peak RSS grew {row['grew_mb']} MB"


def test_every_case_ran(results: dict[str, Any]) -> None:
    assert set(results) == {case.name for case in CASES} | {"summary"}
    assert len(CASES) >= 40
