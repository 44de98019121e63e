"""Smoke test of `bench/soak.py`, so it keeps working: a few seconds of the five-function mix
against a live server with one worker SIGKILLed; every accepted task must end."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import Config, run_soak


@pytest.mark.slow  # a live server, a worker killed and restarted: about a minute
def test_a_short_soak_with_a_worker_kill_loses_nothing(tmp_path: Path) -> None:
    config = Config(minutes=0.1, kill_every=3.0, in_flight=2, bad_every=3, drain=240.0)
    report = run_soak(config, tmp_path)
    assert report["worker_kills"] >= 1
    assert report["submitted"] >= 2
    assert report["lost"] == 0, report
    ended = report["succeeded"] + sum(report["failed_by_code"].values()) + report["canceled"]
    assert ended == report["submitted"]
    assert report["samples"] >= 2 and report["api_rss_mb"]["peak"] > 0
