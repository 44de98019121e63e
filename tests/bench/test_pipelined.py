"""Smoke run of bench/pipelined.py at tiny sizes: both modes drain every task of the five
functions on the simulated accelerator and the rows have the shape `make bench` reads (no
timed assertion: the figures themselves are the benchmark's)."""

from __future__ import annotations

import pytest

from bench import pipelined


@pytest.mark.slow
def test_the_bench_runs_serial_and_pipelined_and_reports_rows(one_torch_thread: None) -> None:
    rows = pipelined.run(tasks=5, step_ms=5, steps=2, tiny=False, rounds=2)
    assert [row["mode"] for row in rows] == ["serial", "pipelined", "pipelined / serial"]
    assert {row["accelerator"] for row in rows} == {pipelined.SIMULATED}
    assert "SIMULATED" in pipelined.SIMULATED  # the output names the simulation
    for row in rows[:2]:
        assert (
            row["tasks"] == 10 and row["tasks_per_s"] > 0
        )  # 2 rounds of 5 and 0 <= row["idle_fraction"] <= 1
    assert "pipelined / serial" in pipelined.format_rows(rows)
