"""bench/gpu.py's results file and its section of docs/benchmarks.md.

Measured rows are kept in a JSON file (`bench/results/gpu.json`), one entry per (model,
settings) row, so a later run of some rows keeps the others. The docs section is rendered from
the plan's rows plus every stored one: a row without a stored measurement says "not measured"
in every measured column; nothing is ever filled in that was not measured. The file's other
sections (`make bench`'s) are kept byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "load_results",
    "merge_results",
    "render_section",
    "replace_section",
    "row_id",
    "save_results",
]

START, END = "<!-- bench:gpu:start -->", "<!-- bench:gpu:end -->"
SERVING_START, SERVING_END = "<!-- bench:serving:start -->", "<!-- bench:serving:end -->"
NOT_MEASURED = "not measured"
_HEADER = """# Benchmarks

Two generated sections: the GPU benchmark (`bench/gpu.py`, see [gpu.md](gpu.md)) and the serving
benchmark (`make bench`). Each writer rewrites only its own section.
"""


def row_id(model: str, settings: list[str]) -> str:
    return model + (" " + " ".join(settings) if settings else "")


def load_results(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("rows", {})
    return dict(rows)


def save_results(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows}, indent=1, sort_keys=True) + "\n")


def merge_results(
    stored: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`new` rows replace stored ones, except that a failed row never replaces a measured one
    (a later run that failed, e.g. out of time, must not erase a measurement)."""
    merged = dict(stored)
    for rid, row in new.items():
        if "error" in row and rid in stored and "error" not in stored[rid]:
            continue
        merged[rid] = row
    return merged


def _num(value: Any, digits: int = 2) -> str:
    return NOT_MEASURED if value is None else f"{value:.{digits}f}"


def _measured_row(rid: str, row: dict[str, Any]) -> str:
    if "error" in row:
        return f"| `{rid}` | {row.get('device', '')} | failed: {row['error']} |" + " |" * 10
    mark = "≈" if row["projected"] else ""
    steps = f"{row['steps_run']}/{row['steps_full']}"
    peak = "n/a" if row["pct_of_peak"] is None else f"{row['pct_of_peak']:.0f} %"
    memory = "n/a" if row["peak_gib"] is None else f"{row['peak_gib']:.1f}"
    cells = [
        f"`{rid}`", row["device"], _num(row["load_s"], 1), steps, _num(row["step_s"]),
        _num(row["text_encode_s"]),
        _num(row["vae_encode_s"]), mark + _num(row["denoise_s"], 1), _num(row["vae_decode_s"]),
        mark + _num(row["video_s"], 1), memory, peak, row["date"],
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _rows_table(plan: list[tuple[str, str | None]], results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| row (model + settings) | GPU | load s | steps run/full | s/step | text encode s | "
        "VAE encode s | denoise s | VAE decode s | s/video | peak GiB | % bf16 peak | date |",
        "|" + " --- |" * 13,
    ]
    seen = set()
    for rid, reason in plan:
        seen.add(rid)
        if rid in results:
            lines.append(_measured_row(rid, results[rid]))
        else:
            why = NOT_MEASURED + (f" ({reason})" if reason else "")
            lines.append(f"| `{rid}` | {why} |" + " |" * 11)
    # Measured rows outside the plan, except the CPU smoke test's (tiny widths: no benchmark).
    extra = [(rid, row) for rid, row in sorted(results.items()) if rid not in seen]
    lines += [_measured_row(rid, row) for rid, row in extra if row.get("model") != "tiny"]
    return "\n".join(lines)


def _target(results: dict[str, dict[str, Any]], rid: str, limit: float) -> str:
    row = results.get(rid)
    if row is None or "error" in row:
        return NOT_MEASURED
    verdict = "met" if row["video_s"] <= limit else "not met"
    how = (
        f"projected from {row['steps_run']}/{row['steps_full']} steps, " if row["projected"] else ""
    )
    where = "" if "H200" in row["device"] else f"; on {row['device']}, not an H200"
    return f"{verdict}: {row['video_s']:.1f} s ({how}{row['date']}{where})"


def _peak_target(results: dict[str, dict[str, Any]], rids: list[str]) -> str:
    parts = []
    for rid in rids:
        row = results.get(rid)
        if row is not None and row.get("pct_of_peak") is not None:
            verdict = "met" if row["pct_of_peak"] >= 50 else "not met"
            parts.append(f"{verdict}: `{rid}` {row['pct_of_peak']:.0f} % on {row['device']}")
    return "; ".join(parts) or NOT_MEASURED


def targets_table(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        ("VACE-14B 720p x 81 frames, `fast`, one H200: ≤ 45 s per video end to end",
         _target(results, "vace-14b VACE_PRESET=fast", 45.0)),
        ("VACE-1.3B 480p x 81 frames, `fast`, one H200: ≤ 10 s per video",
         _target(results, "vace-1.3b VACE_PRESET=fast", 10.0)),
        ("`quality` denoising at ≥ 50 % of the GPU's bf16 peak (FLOPs from the architecture)",
         _peak_target(results, ["vace-1.3b", "vace-14b"])),
        ("Context parallel on 8 GPUs ≥ 6x one GPU, 14B 720p",
         NOT_MEASURED + " (needs 8 GPUs; bench/gpu.py runs one)"),
    ]  # fmt: skip
    lines = ["| target (issue #10) | status |", "| --- | --- |"]
    lines += [f"| {target} | {status} |" for target, status in rows]
    return "\n".join(lines)


def render_section(
    plan: list[tuple[str, str | None]],
    results: dict[str, dict[str, Any]],
    computed: str,
) -> str:
    """The whole section, markers included. `computed` is the plan's computed tables."""
    parts = [
        START,
        "## GPU benchmark (`bench/gpu.py`)",
        "",
        "Generated by `python -m bench.gpu`; how to run it is in [gpu.md](gpu.md#4-benchmarking). "
        "Random weights in the real architectures, so timings are real and outputs are noise. "
        "`≈`: projected from the steps run (first step + the rest at the median later step). "
        "Rows never run on a GPU say *not measured*; no figure here is estimated or copied.",
        "",
        "### Targets",
        "",
        targets_table(results),
        "",
        "### Measured rows",
        "",
        _rows_table(plan, results),
        "",
        computed,
        END,
    ]
    return "\n".join(parts) + "\n"


def replace_section(path: Path, section: str) -> None:
    """Writes `section` between the gpu markers of `path`, keeping the rest byte for byte; a
    missing file is created with both sections (the serving one not generated yet)."""
    if not path.is_file():
        serving = f"{SERVING_START}\n## Serving benchmark (`make bench`)\n\nNot generated yet.\n"
        path.write_text(f"{_HEADER}\n{section}\n{serving}{SERVING_END}\n")
        return
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        path.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    tail = text[end + len(END) :]
    path.write_text(text[:start] + section.rstrip("\n") + tail)
