"""docs/benchmarks.md: each writer rewrites only its own section, delimited by HTML comments
(`<!-- bench:<name>:start -->` ... `<!-- bench:<name>:end -->`), and keeps every other byte.
A missing file is created with both sections, the other one saying it is not generated yet."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.rows import Row

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SECTIONS = ("gpu", "serving")
HEADER = """# Benchmarks

Figures measured on real machines by the repository's benchmarks; each section is rewritten
by its own command and says when and where it was measured.
"""


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def _placeholder(name: str) -> str:
    start, end = _markers(name)
    return f"{start}\n## {name}\n\nNot generated yet.\n{end}\n"


def rewrite_section(name: str, body: str, path: Path = BENCHMARKS) -> None:
    """Puts `body` between `name`'s markers in `path` (created when missing)."""
    start, end = _markers(name)
    text = path.read_text() if path.exists() else HEADER + "".join(
        "\n" + _placeholder(s) for s in SECTIONS
    )  # fmt: skip
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def machine() -> str:
    """One line: CPU model, cores, memory, OS, Python, and the load average right now."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {load}"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "not measured"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| Figure | Ours (median) | Baseline (median, same run) | Ratio ours / baseline | Target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        baseline = f"{_number(row.baseline)} ({row.baseline_name})"
        lines.append(
            f"| {row.figure} | {_number(row.ours)} | {baseline} | {ratio} | {row.target or '-'} |"
        )
    notes = [f"* {row.figure}: {row.note}" for row in rows if row.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def serving_section(
    rows: Sequence[Row],
    *,
    started: datetime,
    machine_line: str,
    extra: str,
    encoders: str,
    command: str,
) -> str:
    return "\n".join(
        [
            "## Serving (`make bench`)",
            "",
            f"Measured {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC by `{command}` on "
            f"{machine_line}. Every figure is the median of its runs; its baseline was "
            "measured in the same run, alternated with it under the same load generator "
            "(bench/loadgen.py) and concurrency, so the ratio is the figure to read on a "
            "busy machine. The API runs as `vace-server serve` on SQLite; the baselines are "
            "in bench/baseline_app.py.",
            "",
            table(rows),
            "",
            "### Pipelined vs serial worker",
            "",
            extra.strip(),
            "",
            "### Output encoder (libx264 presets)",
            "",
            encoders.strip(),
        ]
    )
