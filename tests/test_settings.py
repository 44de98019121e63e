"""Settings that can never work are refused when the settings are built, by every entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from vace_server.cli import app
from vace_server.settings import Settings, describe_invalid


@pytest.mark.parametrize(
    ("kwargs", "names", "fragment"),
    [
        ({"num_frames": 80}, "VACE_NUM_FRAMES", "4n+1"),
        ({"num_frames": 0}, "VACE_NUM_FRAMES", "greater than or equal to 1"),
        ({"num_inference_steps": 0}, "VACE_NUM_INFERENCE_STEPS", "greater than or equal"),
        ({"generation_area": 100}, "VACE_GENERATION_AREA", "256"),
        ({"fps": 0}, "VACE_FPS", "greater than or equal"),
        ({"lease_seconds": 0}, "VACE_LEASE_SECONDS", "greater than 0"),
        ({"heartbeat_seconds": -1}, "VACE_HEARTBEAT_SECONDS", "greater than 0"),
        ({"poll_seconds": 0}, "VACE_POLL_SECONDS", "greater than 0"),
        ({"maintenance_seconds": -5}, "VACE_MAINTENANCE_SECONDS", "greater than 0"),
        ({"stop_grace_seconds": -1}, "VACE_STOP_GRACE_SECONDS", "greater than or equal"),
        ({"max_attempts": 0}, "VACE_MAX_ATTEMPTS", "greater than or equal to 1"),
        ({"workers": -1}, "VACE_WORKERS", "greater than or equal to 0"),
        ({"media_total_timeout": float("inf")}, "VACE_MEDIA_TOTAL_TIMEOUT", "finite"),
        ({"time_zone": "Mars/Olympus"}, "VACE_TIME_ZONE", "unknown time zone"),
        ({"heartbeat_seconds": 60, "lease_seconds": 30}, "VACE_HEARTBEAT_SECONDS", "shorter"),
    ],
)
def test_values_that_can_never_work_are_refused(
    kwargs: dict[str, object], names: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    line = describe_invalid(info.value)
    assert "\n" not in line
    assert names in line and fragment in line


def test_a_model_folder_must_exist_and_be_a_diffusers_pipeline(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    assert "does not exist" in (Settings(model=str(missing)).model_folder_problem() or "")
    assert "model_index.json" in (Settings(model=str(tmp_path)).model_folder_problem() or "")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanVACEPipeline"}))
    assert Settings(model=str(tmp_path)).model_folder_problem() is None
    # names and hub ids are the loader's to resolve
    for name in ("tiny", "auto", "Wan-AI/Wan2.1-VACE-1.3B-diffusers"):
        assert Settings(model=name).model_folder_problem() is None


def test_a_missing_model_folder_stops_the_commands_that_load_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_MODEL", str(tmp_path / "gone"))
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    for command in (["serve"], ["worker"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2
        assert "the model folder does not exist" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # refused before anything was started


def test_valid_values_pass_and_travel_as_json() -> None:
    settings = Settings(num_frames=17, heartbeat_seconds=0.5, lease_seconds=4, fps=8)
    assert Settings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["generate", "--out", "x.mp4"]])
def test_every_entry_point_stops_with_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_NUM_FRAMES", "80")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "vace-server: invalid settings: VACE_NUM_FRAMES='80': must be 4n+1 (e.g. 81 or 17), not 80"
    ]
