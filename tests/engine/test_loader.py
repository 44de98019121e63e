from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import UniPCMultistepScheduler, WanVACEPipeline

from vace_server.engine import loader
from vace_server.engine.loader import LoadedModel, ModelLoadError, load_model
from vace_server.engine.runner import generate
from vace_server.engine.tiny import build_tiny_pipeline, save_tiny_pipeline
from vace_server.model_inputs import VaceInputs
from vace_server.settings import Settings

SMALL = VaceInputs(width=32, height=16, num_frames=9, output_size=(64, 32), output_seconds=0.5)


def settings(**kwargs: object) -> Settings:
    return Settings(**kwargs)  # type: ignore[arg-type]


def run(model: LoadedModel) -> np.ndarray:
    return generate(model, SMALL, prompt="a cat dance", negative_prompt="negative", seed=3)


def test_tiny_defaults() -> None:
    model = load_model(settings(model="tiny"))
    assert isinstance(model.pipe, WanVACEPipeline)
    assert (model.name, model.kind, model.device, model.dtype) == (
        "tiny",
        "tiny",
        "cpu",
        torch.float32,
    )
    assert model.warning is None
    assert model.profile.generation_area == 112 * 64
    assert (model.profile.num_frames, model.profile.fps) == (81, 16)
    assert model.num_inference_steps == 2
    assert model.guidance_scale == 5.0
    assert model.flow_shift == 3.0
    assert model.max_sequence_length <= 64
    pipe: Any = model.pipe  # diffusers registers its components at run time: untyped
    config: Any = pipe.scheduler.config
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    assert config.prediction_type == "flow_prediction"
    assert config.use_flow_sigmas
    assert pipe._progress_bar_config == {"disable": True}
    assert "pipe=" not in repr(model)  # /health and logs must not dump the module tree


def test_settings_override_per_model_defaults() -> None:
    model = load_model(
        settings(
            model="tiny", num_inference_steps=4, flow_shift=7.5, generation_area=4096,
            guidance_scale=3.0, num_frames=17, fps=16,
        )
    )  # fmt: skip
    assert model.num_inference_steps == 4
    assert model.flow_shift == 7.5
    assert model.pipe.scheduler.config.flow_shift == 7.5  # scheduler rebuilt from its config
    assert model.guidance_scale == 3.0
    assert model.profile.generation_area == 4096
    assert model.profile.num_frames == 17


def test_tiny_weights_are_deterministic_and_leave_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b = build_tiny_pipeline(), build_tiny_pipeline()
    assert torch.equal(torch.rand(3), expected)
    for (name, pa), (_, pb) in zip(
        a.transformer.state_dict().items(), b.transformer.state_dict().items(), strict=True
    ):
        assert torch.equal(pa, pb), name
    assert torch.equal(
        next(iter(a.text_encoder.parameters())), next(iter(b.text_encoder.parameters()))
    )


def test_local_folder_round_trip(tmp_path: Path) -> None:
    folder = save_tiny_pipeline(tmp_path / "vace-tiny")
    assert (folder / "model_index.json").is_file()
    assert {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"} <= {
        p.name for p in folder.iterdir()
    }
    local = load_model(settings(model=str(folder), num_inference_steps=2, flow_shift=3.0))
    assert (local.kind, local.name) == ("local", str(folder))
    assert local.pipe.vae.dtype == torch.float32
    # Same weights, tokenizer and scheduler as the in-memory build -> the very same video
    # (a folder gets the real models' 512 text tokens; align that one knob).
    tiny = load_model(settings(model="tiny"))
    local = dataclasses.replace(local, max_sequence_length=tiny.max_sequence_length)
    np.testing.assert_array_equal(run(local), run(tiny))


def test_local_folder_gets_real_model_defaults(tmp_path: Path) -> None:
    folder = save_tiny_pipeline(tmp_path / "m")
    local = load_model(settings(model=str(folder)))
    assert local.num_inference_steps == 50
    assert local.flow_shift == 16.0
    assert local.pipe.scheduler.config.flow_shift == 16.0
    assert local.profile.generation_area == 832 * 480  # unknown size -> the 480p budget
    assert local.max_sequence_length == 512


def test_folder_that_is_not_a_diffusers_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"model_index\.json"):
        load_model(settings(model=str(tmp_path)))
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ModelLoadError, match="not a WanVACEPipeline"):
        load_model(settings(model=str(tmp_path)))


def test_broken_folder_is_a_model_load_error(tmp_path: Path) -> None:
    folder = save_tiny_pipeline(tmp_path / "m")
    for weights in (folder / "transformer").glob("*.safetensors"):
        weights.write_bytes(b"truncated")
    with pytest.raises(ModelLoadError, match="Re-download"):
        load_model(settings(model=str(folder)))


def test_hub_id_offline_fails_fast_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    repo = "vace-server-tests/no-such-vace-model"
    # "Fast" as behaviour rather than a stopwatch: offline, no connection is even tried (so
    # there is no network timeout to wait out) and nothing sleeps between retries.
    tried: list[object] = []
    me = threading.get_ident()

    def recorded(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != me:  # another thread's business: left alone
                return real(*args, **kwargs)
            tried.append((real.__name__, args))
            raise OSError("no network in this test")

        return call

    monkeypatch.setattr(socket.socket, "connect", recorded(socket.socket.connect))
    monkeypatch.setattr(socket, "create_connection", recorded(socket.create_connection))
    monkeypatch.setattr(time, "sleep", recorded(time.sleep))
    with pytest.raises(ModelLoadError) as info:
        load_model(settings(model=repo))
    assert tried == []
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert repo in message
    assert "offline" in message.lower()
    assert f"huggingface-cli download {repo}" in message
    assert "VACE_MODEL=" in message


def test_offline_detection_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert not loader._hub_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loader._hub_offline()


def test_auto_without_cuda_falls_back_to_tiny_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="vace_server.engine.loader"):
        model = load_model(settings(model="auto"))
    assert (model.kind, model.name, model.device) == ("tiny", "tiny", "cpu")
    assert model.warning is not None and "TINY" in model.warning
    assert any(r.levelno == logging.WARNING and "TINY" in r.getMessage() for r in caplog.records)


def test_auto_with_cuda_picks_the_1_3b_hub_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert loader._resolve_name("auto") == (loader.DEFAULT_HUB_MODEL, None)
    assert loader._resolve_device("auto") == "cuda"
    assert loader._resolve_dtype("auto", "cuda") == torch.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "not a model"}, "neither"),
        ({"model": "./missing/folder/here"}, "neither"),
        ({"model": "tiny", "dtype": "int8"}, "VACE_DTYPE"),
        ({"model": "tiny", "device": "cuda"}, "CUDA"),
        ({"model": "tiny", "num_frames": 80}, "4n\\+1"),
        ({"model": "tiny", "generation_area": 100}, "cell"),
        ({"model": "tiny", "num_inference_steps": 0}, "STEPS"),
        # settings are checked before any weights are looked up
        ({"model": "vace-server-tests/never-fetched", "num_frames": 80}, "4n\\+1"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], match: str) -> None:
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    # Settings refuses most of these itself (tests/test_settings.py); model_construct skips
    # those checks so the loader's own, for settings built any other way, is tested too.
    with pytest.raises(ModelLoadError, match=match):
        load_model(Settings.model_construct(**kwargs))  # type: ignore[arg-type]


def test_dtype_resolution() -> None:
    assert loader._resolve_dtype("auto", "cpu") == torch.float32
    assert loader._resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert loader._resolve_dtype("torch.float16", "cuda") == torch.float16


def test_cpu_offload_is_ignored_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vace_server.engine.loader"):
        model = load_model(settings(model="tiny", model_cpu_offload=True))
    assert model.device == "cpu"
    assert "OFFLOAD" in caplog.text


@pytest.mark.parametrize(
    ("layers", "name", "area"),
    [
        (30, "whatever", 832 * 480),
        (40, "whatever", 1280 * 720),
        (None, "/models/Wan2.1-VACE-14B-diffusers", 1280 * 720),
        (None, "Wan-AI/Wan2.1-VACE-1.3B-diffusers", 832 * 480),
        (30, "mislabelled-14B", 832 * 480),  # the config wins over the name
    ],
)
def test_real_area_from_config_or_name(layers: int | None, name: str, area: int) -> None:
    pipe = SimpleNamespace(transformer=SimpleNamespace(config=SimpleNamespace(num_layers=layers)))
    assert loader._real_area(pipe, name) == area  # type: ignore[arg-type]


def test_vae_stays_float32_when_the_model_is_half(tmp_path: Path) -> None:
    folder = save_tiny_pipeline(tmp_path / "m")
    for model in (
        load_model(settings(model=str(folder), dtype="bfloat16")),
        load_model(settings(model="tiny", dtype="bfloat16")),
    ):
        assert model.dtype == torch.bfloat16
        assert model.pipe.transformer.dtype == torch.bfloat16
        assert model.pipe.text_encoder.dtype == torch.bfloat16
        assert model.pipe.vae.dtype == torch.float32


def test_a_step_count_the_scheduler_cannot_walk_is_refused_at_start() -> None:
    from vace_server.engine.loader import ModelLoadError, load_model
    from vace_server.settings import Settings

    with pytest.raises(ModelLoadError, match="VACE_NUM_INFERENCE_STEPS=400"):
        load_model(Settings(model="tiny", num_inference_steps=400))
    assert load_model(Settings(model="tiny", num_inference_steps=300)).num_inference_steps == 300


def test_a_builder_replaces_resolution_and_gets_the_resolved_device_and_dtype() -> None:
    # bench/gpu.py's seam: its real-size random-weight pipelines load like a checkpoint would.
    calls: list[tuple[str, torch.dtype]] = []

    def build(device: str, dtype: torch.dtype) -> Any:
        calls.append((device, dtype))
        return build_tiny_pipeline()

    model = load_model(settings(model="random:any", dtype="float32"), build=build)
    assert calls == [("cpu", torch.float32)]
    assert (model.name, model.kind) == ("random:any", "local")
    assert model.num_inference_steps == loader.STEPS_REAL  # a real model's defaults
    assert model.flow_shift == loader.FLOW_SHIFT_REAL
