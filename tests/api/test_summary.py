"""The start-up summary `vace-server serve` prints (api/summary.py)."""

from __future__ import annotations

import json
from pathlib import Path

from vace_server.api.summary import key_source, summary_lines
from vace_server.settings import Settings


def _lines(settings: Settings, generated: str | None = None) -> dict[str, str]:
    source = key_source(
        settings, count=1, file=settings.store.data_dir / "api_key", generated=generated
    )
    lines = summary_lines(settings, source)
    assert lines[0].startswith("vace-server ")
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}


def test_the_tiny_model_says_it_makes_noise_and_where_real_weights_are(tmp_path: Path) -> None:
    settings = Settings(model="tiny", data_dir=tmp_path, host="0.0.0.0", port=8123, workers=1)
    lines = _lines(settings, generated="sk-new")
    base = "http://127.0.0.1:8123"  # a wildcard bind is shown as loopback, which opens
    assert lines["API"] == f"{base}/api/v1/services/aigc/video-generation/video-synthesis"
    assert lines["Playground"] == f"{base}/playground"
    assert lines["API key"] == f"sk-new (generated now, stored in {tmp_path / 'api_key'})"
    assert lines["Model"] == (
        "tiny, the TINY RANDOM test model: videos are noise, not real generations "
        "(real weights and GPUs: docs/gpu.md)"
    )
    assert lines["Workers"].startswith(f"1 embedded, loading the model now (GET {base}/ready")
    assert lines["Data"] == str(tmp_path.resolve())


def test_auto_public_base_and_configured_keys(tmp_path: Path) -> None:
    settings = Settings(
        model="auto", data_dir=tmp_path, public_base_url="https://vace.example/", workers=0
    )
    source = key_source(settings, count=2, file=None, generated=None)
    lines = summary_lines(settings, source)
    assert "  Playground: https://vace.example/playground" in lines
    assert "  API key:    2 key(s) from VACE_API_KEYS" in lines
    model = next(line for line in lines if line.startswith("  Model:"))
    assert "CUDA GPU" in model and "TINY RANDOM" in model and "when it is ready" in model
    assert any("VACE_WORKERS=0" in line for line in lines)
    # a stored key is pointed at, never printed again
    stored = key_source(
        settings.replace(api_keys=""), count=1, file=tmp_path / "api_key", generated=None
    )
    assert stored.text == f"stored in {tmp_path / 'api_key'} (`cat {tmp_path / 'api_key'}`)"


def test_each_served_model_is_named_with_what_it_loads(tmp_path: Path) -> None:
    registry = {"wanx2.1-vace-plus": {}, "wan2.2-vace": {"model": "tiny-a14b"}}
    settings = Settings(model="/models/vace-14b", data_dir=tmp_path, models=json.dumps(registry))  # type: ignore[arg-type]
    assert _lines(settings)["Model"] == (
        "wanx2.1-vace-plus: /models/vace-14b; wan2.2-vace: tiny-a14b, the TINY RANDOM test "
        "model: videos are noise, not real generations (real weights and GPUs: docs/gpu.md)"
    )
