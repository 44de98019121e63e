"""bench/gpu_run.py: flat settings overrides (unknown ones refused by name), and one real
generation on the tiny architecture timed per stage, with guidance's forward count."""

from __future__ import annotations

import pytest

from bench.gpu_run import BenchError, parse_overrides, peak_tflops, run_row, unknown_settings


def test_overrides_map_to_settings_fields_and_refuse_unknown_names() -> None:
    assert parse_overrides(["VACE_NUM_FRAMES=17", "VACE_GUIDANCE_SCALE=1"]) == {
        "num_frames": "17",
        "guidance_scale": "1",
    }
    with pytest.raises(BenchError, match="VACE_NO_SUCH_SWITCH is not a setting of this build"):
        parse_overrides(["VACE_NO_SUCH_SWITCH=1"])
    with pytest.raises(BenchError, match="want VACE_NAME=value"):
        parse_overrides(["preset=fast"])
    assert unknown_settings(["VACE_FPS=16", "VACE_NO_SUCH_SWITCH=1"]) == ["VACE_NO_SUCH_SWITCH"]


def test_invalid_value_fails_with_the_settings_own_message() -> None:
    with pytest.raises(BenchError, match="VACE_NUM_FRAMES='80': must be 4n"):
        run_row("tiny", ["VACE_NUM_FRAMES=80"], max_steps=1)
    with pytest.raises(BenchError, match="unknown model"):
        run_row("vace-2b", [], max_steps=1)


def test_peak_table_matches_device_names() -> None:
    assert peak_tflops("NVIDIA H100 PCIe", None) == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.4
    assert peak_tflops("Some GPU", None) is None and peak_tflops("Some GPU", 100.0) == 100.0


@pytest.mark.slow  # two tiny generations
def test_tiny_row_times_every_stage_and_counts_guidance_forwards() -> None:
    cfg = run_row("tiny", ["VACE_NUM_INFERENCE_STEPS=4"], max_steps=2)
    assert (cfg["steps_run"], cfg["steps_full"], cfg["projected"]) == (2, 4, True)
    for stage in ("text_encode_s", "vae_encode_s", "first_step_s", "step_s", "vae_decode_s"):
        assert cfg[stage] > 0, stage
    assert cfg["denoise_s"] == pytest.approx(cfg["first_step_s"] + 3 * cfg["step_s"])
    assert cfg["forwards_per_step"] == 2  # guidance 5: conditional + unconditional
    pairs = ["VACE_NUM_INFERENCE_STEPS=2", "VACE_GUIDANCE_SCALE=1"]
    plain = run_row("tiny", pairs, max_steps=2, warmup=True)  # the warm-up run is not counted
    assert plain["forwards_per_step"] == 1 and plain["projected"] is False
    assert plain["tflops_per_step"] == pytest.approx(cfg["tflops_per_step"] / 2)
