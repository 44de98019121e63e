"""bench/gpu.py: the CPU smoke test (a matrix row in a child process, its result stored and
rendered into a docs section that keeps the rest of the file), and matrix rows naming a
setting this build lacks skipped by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import gpu, gpu_docs


@pytest.mark.slow  # a child process runs the tiny architecture once
def test_smoke_matrix_runs_in_a_child_and_renders_its_section(tmp_path: Path) -> None:
    results, docs = tmp_path / "gpu.json", tmp_path / "benchmarks.md"
    other = "<!-- bench:serving:start -->\nkept as is\n<!-- bench:serving:end -->\n"
    docs.write_text(
        "# B\n\n<!-- bench:gpu:start -->\nSTALE-SECTION\n<!-- bench:gpu:end -->\n\n" + other
    )
    argv = ["--rows", "smoke", "--results", str(results), "--write-docs", "--docs", str(docs)]
    assert gpu.main(argv) == 0
    row = json.loads(results.read_text())["rows"]["tiny VACE_NUM_INFERENCE_STEPS=3"]
    assert row["steps_run"] == 2 and row["video_s"] > row["denoise_s"] > 0
    text = docs.read_text()
    assert text.startswith("# B\n\n<!-- bench:gpu:start -->\n## GPU benchmark")
    assert text.endswith("<!-- bench:gpu:end -->\n\n" + other) and "STALE-SECTION" not in text
    assert "| `vace-14b` | not measured |" in text  # a planned row never run
    assert "tiny VACE" not in text  # the smoke row is not a benchmark
    # A planned row with a measurement: every column filled, the projection marked.
    rid = "tiny VACE_NUM_INFERENCE_STEPS=3"
    line = next(x for x in gpu_docs.render_section([(rid, None)], {rid: row}, "").splitlines()
                if x.startswith(f"| `{rid}`"))  # fmt: skip
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert len(cells) == 13 and cells[1].startswith("CPU") and cells[3] == "2/3"
    assert cells[7].startswith("≈") and cells[9].startswith("≈") and "" not in cells


def test_matrix_skips_rows_with_unknown_settings_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows: list[gpu.Row] = [("tiny", ["VACE_NO_SUCH_SWITCH=1"], 1)]
    results = gpu.run_matrix(rows, tmp_path / "r.json", budget_s=60, peak=None, strict=False)
    assert results == {}
    assert "SKIPPED tiny VACE_NO_SUCH_SWITCH=1: VACE_NO_SUCH_SWITCH" in capsys.readouterr().err
    with pytest.raises(gpu.BenchError, match="VACE_NO_SUCH_SWITCH"):
        gpu.run_matrix(rows, tmp_path / "r.json", budget_s=60, peak=None, strict=True)


def test_explicit_unknown_setting_fails_before_any_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu.main(["--model", "tiny", "--set", "VACE_NO_SUCH_SWITCH=1"]) == 2
    assert "VACE_NO_SUCH_SWITCH is not a setting of this build" in capsys.readouterr().err


def test_targets_table_reads_measured_rows_only() -> None:
    row = {
        "model": "vace-14b", "device": "NVIDIA H200", "video_s": 44.0, "projected": False,
        "steps_run": 4, "steps_full": 4, "date": "2026-12-02", "pct_of_peak": None,
    }  # fmt: skip
    table = gpu_docs.targets_table({"vace-14b VACE_PRESET=fast": row})
    assert "| met: 44.0 s (2026-12-02) |" in table
    assert table.count("not measured") == 3
    slow = gpu_docs.targets_table({"vace-14b VACE_PRESET=fast": row | {"video_s": 50.0}})
    assert "not met: 50.0 s" in slow


def test_merge_adds_a_gpu_runs_rows_newest_measurement_winning(tmp_path: Path) -> None:
    stored, returned = tmp_path / "gpu.json", tmp_path / "returned.json"
    gpu_docs.save_results(stored, {"a": {"v": 1}, "b": {"v": 1}, "d": {"v": 1}})
    failed = {"error": "stopped after 30 s (time budget)"}
    gpu_docs.save_results(returned, {"b": {"v": 2}, "c": {"v": 2}, "d": failed, "e": failed})
    assert gpu.main(["--merge", str(returned), "--results", str(stored)]) == 0
    assert gpu_docs.load_results(stored) == {
        "a": {"v": 1},
        "b": {"v": 2},
        "c": {"v": 2},
        "d": {"v": 1},
        "e": failed,
    }  # fmt: skip  (a failure never erases a measurement)
