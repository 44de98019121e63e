"""Smoke test of `make bench` (bench/serving.py) at tiny sizes, so it keeps working: every row
is measured against its baseline and the serving section of a benchmarks file is rewritten,
the rest of the file kept byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import serving
from bench.report import rewrite_section
from bench.rows import Row


def test_a_section_is_rewritten_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.md"
    rewrite_section("serving", "first", path)
    text = path.read_text()
    assert "<!-- bench:gpu:start -->" in text and "Not generated yet." in text
    path.write_text(text.replace("Not generated yet.", "GPU rows, by bench/gpu.py"))
    kept = path.read_text()
    rewrite_section("serving", "second", path)
    assert path.read_text() == kept.replace("\nfirst\n", "\nsecond\n")


def test_a_ratio_is_ours_over_the_baseline() -> None:
    assert Row("x", 30.0, 60.0, "b", "").ratio == 0.5
    assert Row("x", None, 60.0, "b", "").ratio is None


@pytest.mark.slow  # five live servers and a few tiny-model tasks: about a minute
def test_the_quick_bench_measures_every_row(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    section = serving.main(["--quick", "--out", str(out)])
    assert section in out.read_text()
    for figure in ("query `GET", "create", "list, page of 10", "API memory", "submit -> RUNNING",
                   "serving overhead", "Pipelined vs serial", "Output encoder"):  # fmt: skip
        assert figure in section
    assert "not measured" not in section.split("### Pipelined")[0]
