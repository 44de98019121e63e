"""bench/encoder.py at tiny sizes: every preset is measured on the same generated clip, the
default is the settings' default, and the figures are the encoder's own (a real PSNR, sizes
that differ by preset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import encoder
from vace_server.settings import Settings


def test_the_clip_is_retimed_as_the_worker_delivers() -> None:
    clip = encoder.natural_clip(64, 48, 17)
    assert clip.frames.shape == (17, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert len(clip.order) == 30 and clip.order[0] == 0 and clip.order[-1] == 16
    assert np.all(np.diff(clip.order) >= 0)
    # Texture, not a flat field: neighbouring frames differ, and each frame has detail.
    assert clip.frames.std() > 20 and np.abs(np.diff(clip.frames.astype(int), axis=0)).mean() > 1


def test_every_preset_is_measured_against_the_default(tmp_path: Path) -> None:
    assert Settings().engine.output_x264_preset == encoder.DEFAULT
    assert Settings().engine.output_crf == encoder.CRF
    figures = encoder.measure(encoder.natural_clip(64, 64, 9), tmp_path, rounds=1)
    assert [f.preset for f in figures] == list(encoder.PRESETS)
    for f in figures:
        assert f.seconds > 0 and f.size_bytes > 0
        assert 25 < f.psnr_db < 80  # lossy at crf 18, but the same picture
    assert len({f.size_bytes for f in figures}) > 1  # the presets really differ


def test_the_rows_name_the_default(tmp_path: Path) -> None:
    rows = encoder.markdown_rows(quick=True)
    assert f"| {encoder.DEFAULT} (default) |" in rows
    assert rows.count("\n| ") == len(encoder.PRESETS) + 2  # header, rule, one row per preset
