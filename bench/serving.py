"""`make bench`: the serving figures (issue #11) measured side by side with their baselines,
written into the serving section of docs/benchmarks.md.

    .venv/bin/python -m bench.serving [--quick] [--out docs/benchmarks.md]

`--quick` runs every part at tiny sizes (the smoke test in `make test`); the full run takes a
few minutes on a two-core machine. Parts: the API floor (bench/api_floor.py), dispatch latency
and serving overhead (bench/dispatch.py), the pipelined-vs-serial worker rows when
bench/pipelined.py offers them (`markdown_rows(quick=...)`), and the output encoder's presets
(bench/encoder.py)."""

from __future__ import annotations

import argparse
import importlib
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import api_floor, dispatch, encoder
from bench.report import BENCHMARKS, machine, rewrite_section, serving_section, table
from bench.rows import Row


@dataclass(frozen=True)
class Sizes:
    floor: api_floor.FloorSizes
    dispatch_tasks: int
    overhead_tasks: int


FULL = Sizes(api_floor.FloorSizes(4.0, 5, 8, 10_000), dispatch_tasks=25, overhead_tasks=7)
QUICK = Sizes(api_floor.FloorSizes(0.3, 1, 2, 200), dispatch_tasks=2, overhead_tasks=1)


def pipelined_rows(quick: bool) -> str:
    """The pipelined worker's rows, from bench/pipelined.py when it offers them."""
    try:
        module = importlib.import_module("bench.pipelined")
    except ImportError:
        return "Not generated yet (bench/pipelined.py)."
    rows = getattr(module, "markdown_rows", None)
    if rows is None:
        return "Not generated yet (bench/pipelined.py offers no `markdown_rows`)."
    return str(rows(quick=quick))


def run(sizes: Sizes, tmp: Path, *, quick: bool) -> tuple[list[Row], str, str]:
    for part in ("floor", "dispatch"):
        (tmp / part).mkdir(parents=True, exist_ok=True)
    rows = api_floor.measure(tmp / "floor", sizes.floor)
    rows += dispatch.measure(
        tmp / "dispatch",
        dispatch_tasks=sizes.dispatch_tasks,
        overhead_tasks=sizes.overhead_tasks,
    )
    return rows, pipelined_rows(quick), encoder.markdown_rows(quick=quick)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=BENCHMARKS)
    args = parser.parse_args(argv)
    started = datetime.now(tz=UTC)
    before = machine()
    with tempfile.TemporaryDirectory(prefix="vace-bench-") as tmp:
        rows, extra, encoders = run(QUICK if args.quick else FULL, Path(tmp), quick=args.quick)
    load_after = machine().rsplit("load average ", 1)[-1]
    command = "python -m bench.serving" + (" --quick" if args.quick else "")
    section = serving_section(
        rows,
        started=started,
        machine_line=f"{before} (at the end: {load_after})",
        extra=extra,
        encoders=encoders,
        command=command,
    )
    rewrite_section("serving", section, args.out)
    print(table(rows))
    return section


if __name__ == "__main__":
    main()
