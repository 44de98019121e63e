"""`vace-server generate`: one task run locally through the CLI, with the tiny model."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.support.images import png_bytes, scene, subject_on_white
from tests.support.media_server import MediaServer, Served
from tests.support.videos import moving_square_frames, mp4_bytes
from vace_server.api.validation import parse_create_request
from vace_server.api.wire_names import wire_message
from vace_server.cli import app
from vace_server.errors import InputField, InvalidFile
from vace_server.media.encode import probe_mp4
from vace_server.oneshot import (
    LocalMediaSource,
    OneShotOptions,
    OptionValues,
    UsageError,
    build_spec,
    local_path,
    media_url,
)
from vace_server.oneshot.console import ConsoleProgress
from vace_server.tasks.progress import Stage, TaskProgress

NUM_FRAMES = 17  # generated frames (4n+1) at 16 fps: small, so each run takes about a second
OUTPUT_FPS = 30


@pytest.fixture(autouse=True)
def hermetic_env(monkeypatch: pytest.MonkeyPatch, one_torch_thread: None) -> None:
    """No VACE_* setting from the machine leaks in; one torch thread (fastest for tiny)."""
    for name in list(os.environ):
        if name.startswith("VACE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("VACE_NUM_FRAMES", str(NUM_FRAMES))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "subject": tmp_path / "subject.png",
        "scene": tmp_path / "scene.png",
        "video": tmp_path / "in.mp4",
        "text": tmp_path / "notes.txt",
    }
    paths["subject"].write_bytes(png_bytes(subject_on_white()))
    paths["scene"].write_bytes(png_bytes(scene()))
    paths["video"].write_bytes(mp4_bytes(moving_square_frames(17, size=(64, 48)), 16))
    paths["text"].write_text("not an image\n")
    return paths


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["generate", "--model", "tiny", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- runs
def test_image_reference_from_a_local_png(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    code, stdout, stderr = invoke(
        "--function", "image_reference", "--prompt", "a red ball on a table",
        "--ref", files["subject"], "--size", "960*960", "--seed", "7", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    info = probe_mp4(out)
    # image_reference delivers the generated span, (17 - 1) / 16 s, at 30 fps
    frames = round((NUM_FRAMES - 1) / 16 * OUTPUT_FPS)
    assert (info.frame_count, info.width, info.height) == (frames, 960, 960)
    assert (info.codec_name, info.fps, info.has_audio) == ("h264", OUTPUT_FPS, False)
    assert f"wrote {out}: {frames} frames, 960x960" in stdout
    assert "seed 7" in stdout


def test_the_fast_preset_runs_with_its_lora_and_says_so(
    files: dict[str, Path], tmp_path: Path, tiny_lora: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_PRESET", "fast")
    monkeypatch.setenv("VACE_DISTILL_LORA", str(tiny_lora))
    out = tmp_path / "fast.mp4"
    code, stdout, stderr = invoke(
        "--function", "image_reference", "--prompt", "a red ball",
        "--ref", files["subject"], "--seed", "7", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert "preset fast, 4 steps, guidance 1" in stdout
    monkeypatch.setenv("VACE_DISTILL_LORA", str(tmp_path / "absent.safetensors"))
    code, _stdout, stderr = invoke(
        "--function", "image_reference", "--prompt", "a red ball",
        "--ref", files["subject"], "--out", out,
    )  # fmt: skip
    assert code == 1 and "VACE_DISTILL_LORA" in stderr and "does not exist" in stderr


def test_video_outpainting_from_a_local_mp4(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "wide.mp4"
    code, _stdout, stderr = invoke(
        "--function", "video_outpainting", "--prompt", "a wider view",
        "--video", files["video"], "--left-scale", "1.5", "--right-scale", "1.5", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    info = probe_mp4(out)
    # 64x48 with 1.5 on the left and right: 64/2 * 3 = 96 wide; 17 frames at 16 fps as input
    assert (info.width, info.height, info.codec_name) == (96, 48, "h264")
    assert info.frame_count == round(17 / 16 * OUTPUT_FPS)


def test_local_files_and_urls_mix(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL goes through the downloader, a `file://` URL is read locally."""
    monkeypatch.setenv("VACE_MEDIA_ALLOW_PRIVATE_NETWORKS", "1")
    out = tmp_path / "out.mp4"
    with MediaServer() as server:
        scene_url = server.add("/scene.png", Served(files["scene"].read_bytes(), "image/png"))
        code, _stdout, stderr = invoke(
            "--function", "image_reference", "--prompt", "a ball in a field",
            "--ref", files["subject"].as_uri(), "--ref", scene_url,
            "--obj-or-bg", "obj", "--obj-or-bg", "bg", "--size", "720*1280", "--out", out,
        )  # fmt: skip
        assert server.hits == {"/scene.png": 1}
    assert code == 0, stderr
    assert (probe_mp4(out).width, probe_mp4(out).height) == (720, 1280)


def test_loopback_urls_need_no_setting(files: dict[str, Path], tmp_path: Path) -> None:
    """generate runs on the user's machine: loopback media is reached with no VACE_* set
    (`serve` keeps refusing it, tests/media/test_fetch.py)."""
    out = tmp_path / "out.mp4"
    with MediaServer() as server:
        video_url = server.add("/in.mp4", Served(files["video"].read_bytes(), "video/mp4"))
        code, _stdout, stderr = invoke(
            "--function", "video_outpainting", "--prompt", "a wider view",
            "--video", video_url, "--top-scale", "1.5", "--out", out,
        )  # fmt: skip
        assert server.hits == {"/in.mp4": 1}
    assert code == 0, stderr
    assert probe_mp4(out).width == 64


def test_the_committed_samples_run_as_local_files(tmp_path: Path) -> None:
    """The README's generate example: the repo's samples/ as local files."""
    samples = Path(__file__).resolve().parents[1] / "samples"
    out = tmp_path / "edit.mp4"
    code, _stdout, stderr = invoke(
        "--function", "video_edit", "--prompt", "a cat walks",
        "--video", samples / "clip.mp4", "--mask", samples / "mask.png",
        "--mask-frame-id", "1", "--mask-type", "tracking", "--size", "960*960", "--out", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert (probe_mp4(out).width, probe_mp4(out).height) == (960, 960)


# ---------------------------------------------------------------- failures
def test_a_text_file_as_reference_fails_the_task(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    code, _stdout, stderr = invoke(
        "--function", "image_reference", "--prompt", "x", "--ref", files["text"], "--out", out
    )
    assert code == 1
    assert (
        "InvalidFile.Format: The format of input.ref_images_url is not supported; allowed "
        "formats: JPG, JPEG, PNG, BMP, TIFF, WEBP." in stderr
    )
    assert "Traceback" not in stderr
    assert not out.exists()


def test_a_request_the_api_refuses_is_a_usage_error(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*_args: object) -> None:
        raise AssertionError("validation must fail before the model is loaded")

    monkeypatch.setattr("vace_server.engine.loader.load_model", no_model)
    code, _stdout, stderr = invoke(
        "--function", "video_edit", "--prompt", "a lion", "--video", files["video"],
        "--out", tmp_path / "out.mp4",
    )  # fmt: skip
    assert code == 2
    assert "InvalidParameter: Field required: input.mask_image_url" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--function", "image_reference", "--ref", "subject"], "Field required: input.prompt"),
        (
            ["--function", "image_reference", "--prompt", "x", "--ref", "oss://bucket/a.png"],
            "InvalidParameter: The provided URL does not appear to be valid.",
        ),
        (
            ["--function", "image_reference", "--prompt", "x", "--ref", "ftp://host/a.png"],
            "Required parameter(input.ref_images_url) missing or invalid",
        ),
        (
            ["--function", "image_reference", "--prompt", "x", "--ref", "subject", "--seed", "-1"],
            "Required parameter(parameters.seed) missing or invalid",
        ),
        (
            ["--function", "image_reference", "--prompt", "x", "--ref", "missing.png"],
            "UsageError: --ref: no such file:",
        ),
        (["--function", "video_outpainting", "--prompt", "x", "--video", "."], "is not a file"),
    ],
)
def test_usage_errors(
    files: dict[str, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    given: list[str | Path] = [str(files["subject"]) if a == "subject" else a for a in args]
    code, _stdout, stderr = invoke(*given, "--out", tmp_path / "out.mp4")
    assert code == 2
    assert message in stderr


def test_out_must_be_writable_somewhere(files: dict[str, Path], tmp_path: Path) -> None:
    args: list[str | Path] = ["--function", "image_reference", "--prompt", "x"]
    args += ["--ref", files["subject"]]
    code, _stdout, stderr = invoke(*args, "--out", tmp_path / "nowhere" / "out.mp4")
    assert (code, "does not exist" in stderr) == (2, True)
    code, _stdout, stderr = invoke(*args, "--out", tmp_path)
    assert (code, "is a folder" in stderr) == (2, True)


def test_an_inference_crash_is_internal_error_algo(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import WanVACETransformer3DModel

    steps: list[int] = []

    def crash(*_args: object, **_kwargs: object) -> None:
        steps.append(1)
        raise RuntimeError("CUDA out of memory (simulated)")

    # The crash is in the denoising transformer's forward pass: inside inference, after the
    # inputs were fetched, preprocessed and validated (not in any of those steps).
    monkeypatch.setattr(WanVACETransformer3DModel, "forward", crash)
    code, _stdout, stderr = invoke(
        "--function", "image_reference", "--prompt", "x", "--ref", files["subject"],
        "--out", tmp_path / "out.mp4",
    )  # fmt: skip
    assert steps == [1]  # the model ran, and stopped at its first step
    assert code == 1
    assert "InternalError.Algo: An internal error has occurred during algorithm execution." in (
        stderr
    )
    assert "cause: RuntimeError: CUDA out of memory (simulated)" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.slow  # a fresh interpreter importing the whole CLI: ~10 s
def test_the_installed_command_exits_2_on_a_usage_error(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("vace-server")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VACE_")}
    done = subprocess.run(
        [script, "generate", "--function", "video_edit", "--prompt", "x",
         "--video", "https://example.com/a.mp4", "--out", str(tmp_path / "o.mp4")],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "InvalidParameter: Field required: input.mask_image_url" in done.stderr


# ---------------------------------------------------------------- local files
def test_local_paths_become_file_urls_of_the_files_only(files: dict[str, Path]) -> None:
    url = media_url(str(files["subject"]), "--ref")
    assert url == files["subject"].resolve().as_uri()
    assert local_path(url) == files["subject"].resolve()
    assert media_url(files["scene"].as_uri(), "--ref") != url
    for remote in ("https://example.com/a.png", "HTTP://example.com/a.png", "oss://b/a.png"):
        assert media_url(remote, "--ref") == remote
        assert local_path(remote) is None
    with pytest.raises(UsageError, match="only local file://"):
        media_url("file://server/share/a.png", "--ref")


def test_local_files_get_the_download_size_cap(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = media_url(str(files["subject"]), "--ref")
    media = LocalMediaSource(remote=None)  # type: ignore[arg-type]
    assert media.fetch_image(url, InputField.REFERENCES).size == (400, 400)
    monkeypatch.setattr("vace_server.media.images.IMAGE_MAX_BYTES", 1000)
    with pytest.raises(InvalidFile) as caught:
        media.fetch_image(url, InputField.REFERENCES)
    assert caught.value.code == "InvalidFile.Size"
    assert "input.ref_images_url exceeds the size limit" in wire_message(caught.value.message)


# ---------------------------------------------------------------- the API's rules
@pytest.mark.parametrize(
    ("options", "body"),
    [
        (
            OneShotOptions(
                out=Path("o.mp4"), function="image_reference", prompt="p",
                refs=("https://h/a.png", "https://h/b.png"), obj_or_bg=("obj", "bg"),
                size="960*960", seed=3, watermark=True, prompt_extend=False,
            ),
            {
                "input": {"function": "image_reference", "prompt": "p",
                          "ref_images_url": ["https://h/a.png", "https://h/b.png"]},
                "parameters": {"obj_or_bg": ["obj", "bg"], "size": "960*960", "seed": 3,
                               "watermark": True, "prompt_extend": False},
            },
        ),
        (
            OneShotOptions(
                out=Path("o.mp4"), function="video_edit", prompt="p", negative_prompt="n",
                video="https://h/v.mp4", mask_video="https://h/m.mp4", mask_frame_id=2,
                mask_type="fixed", expand_mode="bbox", expand_ratio=0.5, control="depth",
                seed=5,
            ),
            {
                "input": {"function": "video_edit", "prompt": "p", "negative_prompt": "n",
                          "video_url": "https://h/v.mp4", "mask_video_url": "https://h/m.mp4",
                          "mask_frame_id": 2},
                "parameters": {"mask_type": "fixed", "expand_mode": "bbox", "expand_ratio": 0.5,
                               "control_condition": "depth", "seed": 5},
            },
        ),
        (
            OneShotOptions(
                out=Path("o.mp4"), function="video_outpainting", prompt="p",
                video="https://h/v.mp4", top_scale=1.5, left_scale=2.0, seed=1,
            ),
            {
                "input": {"function": "video_outpainting", "prompt": "p",
                          "video_url": "https://h/v.mp4"},
                "parameters": {"top_scale": 1.5, "left_scale": 2.0, "seed": 1},
            },
        ),
    ],
)  # fmt: skip
def test_options_make_the_task_the_api_makes_of_the_same_request(
    options: OneShotOptions, body: dict[str, Any]
) -> None:
    wire = json.dumps({"model": "wanx2.1-vace-plus", **body}).encode()
    expected = parse_create_request(wire, oss_resolve=False, draw_seed=lambda: 0)
    assert build_spec(OptionValues.of(options)) == expected


def test_local_files_go_into_the_task_as_file_urls(files: dict[str, Path]) -> None:
    options = OneShotOptions(
        out=Path("o.mp4"), function="video_repainting", prompt="p", video=str(files["video"]),
        refs=(files["subject"].as_uri(),), control="depth", seed=1,
    )  # fmt: skip
    spec = build_spec(OptionValues.of(options))
    assert spec.video_url == files["video"].resolve().as_uri()
    assert [r.url for r in spec.references] == [files["subject"].resolve().as_uri()]


def test_the_console_shows_the_pipeline_s_reports() -> None:
    text = io.StringIO()
    with ConsoleProgress(Console(file=text, width=120)) as progress:
        progress.loading("tiny")
        progress(TaskProgress.starting(Stage.FETCHING), f"reading {InputField.VIDEO.mention}")
        progress(TaskProgress.starting(Stage.DENOISING))
        progress(TaskProgress.denoising(3, 10, mean_step=2.0))
        progress(TaskProgress.starting(Stage.DECODING))
    shown = text.getvalue()
    assert "loading model: tiny" in shown
    assert "inputs: reading input.video_url" in shown
    assert "step 3/10  2.00 s/step  ETA 0:00:14" in shown
    assert "decoding" in shown
