"""The acceleration switches' load-time checks: each refusal is one line naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vace_server.settings import Settings, describe_invalid


def refusal(**kwargs: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**kwargs)  # type: ignore[arg-type]
    return describe_invalid(caught.value)


def test_defaults_are_all_off() -> None:
    engine = Settings().engine
    assert (engine.attention_backend, engine.cache, engine.offload) == ("native", "none", "none")
    assert (engine.compile, engine.vae_tiling, engine.vae_slicing) == (False, False, False)
    assert (engine.layerwise_casting, engine.vae_dtype, engine.text_encoder_device) == (
        "none",
        "auto",
        "auto",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cache": "faster"}, "VACE_CACHE='faster': FasterCache does not run with"),
        ({"cache": "first_block"}, "VACE_CACHE='first_block': diffusers' First Block Cache"),
        ({"cache": "mag"}, "a cached step adds the hints twice; use taylorseer or pab"),
        ({"cache": "teacache"}, "VACE_CACHE='teacache': Input should be 'none', 'first_block'"),
        ({"cache_interval": "1"}, "VACE_CACHE_INTERVAL='1'"),
        ({"attention_backend": "flash-3"}, "VACE_ATTENTION_BACKEND='flash-3': not a backend"),
        ({"vae_dtype": "fp8"}, "VACE_VAE_DTYPE='fp8': not one of auto"),
        ({"layerwise_casting": "fp4"}, "VACE_LAYERWISE_CASTING='fp4'"),
        ({"offload": "sequential"}, "VACE_OFFLOAD='sequential'"),
        ({"text_encoder_device": "tpu"}, "VACE_TEXT_ENCODER_DEVICE='tpu': not auto, cpu"),
        ({"offload": "group", "model_cpu_offload": True}, "choose one offload"),
        ({"offload": "model", "text_encoder_device": "cpu"}, "use VACE_OFFLOAD=group"),
        ({"model_cpu_offload": True, "text_encoder_device": "cpu"}, "use VACE_OFFLOAD=group"),
    ],
)
def test_impossible_switches_stop_at_load(kwargs: dict[str, object], message: str) -> None:
    assert message in refusal(**kwargs)


def test_offered_caches_and_group_with_a_cpu_text_encoder_are_accepted() -> None:
    assert Settings(cache="taylorseer").engine.cache == "taylorseer"
    assert Settings(cache="pab", cache_interval=3).engine.cache_interval == 3
    assert Settings(offload="group", text_encoder_device="cpu").engine.offload == "group"
