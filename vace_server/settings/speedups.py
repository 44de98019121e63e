"""The engine's acceleration switches (README "Acceleration"): fields of `settings.engine`,
mixed into `EngineSettings` (settings/groups.py), each read from its flat `VACE_*` name.
Checked here: what can be checked without torch. What needs the machine (is the attention
package installed, can this GPU run it) is checked when the model loads (engine/speedups.py),
still before the worker takes a task."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

__all__ = ["RING_BACKENDS", "CacheMethod", "SpeedupFields"]

# Attention backends whose forward returns the log-sum-exp that ring attention merges partial
# results by (GPU kernels only; engine/parallel.py): VACE_CONTEXT_PARALLEL=ring needs one.
RING_BACKENDS = frozenset(
    {"flash", "flash_hub", "_flash_3_hub", "sage", "sage_hub", "_native_cudnn", "_native_flash"}
)
CacheMethod = Literal["none", "first_block", "mag", "taylorseer", "faster", "pab"]
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
# Same spellings as VACE_DTYPE (engine/loader.py maps them), "auto" = the model card's float32.
_VAE_DTYPES = ("auto", "float32", "fp32", "float", "bfloat16", "bf16", "float16", "fp16", "half")


class SpeedupFields(BaseModel):
    """Acceleration switches; every default is off, so stock settings run stock diffusers."""

    vae_dtype: str = Field(
        default="auto", description="auto (= float32, as the Wan model card says) | bf16 | fp16"
    )
    attention_backend: str = Field(
        default="native",
        description="diffusers attention backend: native, flash, _flash_3, sage, xformers, flex…",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the repeated transformer blocks; compiled by a warm-up run "
        "when the worker starts.",
    )
    compile_mode: Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"] = "default"
    compile_backend: str = Field(default="inductor", description="torch.compile backend")
    cache: CacheMethod = Field(default="none", description="diffusers cache method")
    cache_interval: int | None = Field(
        default=None,
        ge=2,
        description="taylorseer: steps between full computations (default 5); "
        "pab: attention computed every N calls (default 2).",
    )
    layerwise_casting: Literal["none", "float8_e4m3fn", "float8_e5m2"] = Field(
        default="none", description="store transformer weights in fp8, compute in VACE_DTYPE"
    )
    offload: Literal["none", "model", "group"] = "none"
    group_offload_type: Literal["block_level", "leaf_level"] = "leaf_level"
    text_encoder_device: str = Field(default="auto", description="auto (the model's) | cpu")
    vae_tiling: bool = False
    vae_slicing: bool = False

    @field_validator("vae_dtype")
    @classmethod
    def _known_vae_dtype(cls, value: str) -> str:
        if value.strip().lower().removeprefix("torch.") not in _VAE_DTYPES:
            raise ValueError("not one of auto, float32, bfloat16, float16 (fp32, bf16, fp16)")
        return value

    @field_validator("attention_backend", "compile_backend")
    @classmethod
    def _a_name(cls, value: str) -> str:
        text = value.strip().lower()
        if not re.fullmatch(r"[a-z0-9_]+", text):
            raise ValueError("not a backend name (letters, digits, underscores)")
        return text

    @field_validator("cache")
    @classmethod
    def _offered(cls, value: str) -> str:
        # Each tried on diffusers 0.42.1 with WanVACETransformer3DModel (tests/engine/
        # test_speedups.py shows why): refused with the reason rather than run wrong.
        if value in ("first_block", "mag"):
            raise ValueError(
                "diffusers' First Block Cache and MagCache cache the residual of the main blocks, "
                "but the VACE transformer adds its control hints between those blocks, so a "
                "cached step adds the hints twice; use taylorseer or pab"
            )
        if value == "faster":
            raise ValueError(
                "FasterCache does not run with diffusers' WanVACEPipeline (it needs the two CFG "
                "passes in one batch); use taylorseer or pab"
            )
        return value

    @field_validator("text_encoder_device")
    @classmethod
    def _te_device(cls, value: str) -> str:
        if not _DEVICE.match(value.strip().lower()):
            raise ValueError("not auto, cpu or cuda[:N]")
        return value.strip().lower()

    @model_validator(mode="after")
    def _consistent(self) -> SpeedupFields:
        # model_cpu_offload is EngineSettings' own (older) switch: it means offload=model.
        if self.offload == "group" and getattr(self, "model_cpu_offload", False):
            raise ValueError("VACE_MODEL_CPU_OFFLOAD=1 and VACE_OFFLOAD=group: choose one offload")
        model_offload = self.offload == "model" or getattr(self, "model_cpu_offload", False)
        if model_offload and self.text_encoder_device == "cpu":
            # diffusers' model offload onloads every component of its chain to the GPU to run it
            raise ValueError(
                "VACE_TEXT_ENCODER_DEVICE=cpu does not combine with model offload (it runs the "
                "text encoder on the GPU); use VACE_OFFLOAD=group, which leaves it on the CPU"
            )
        return self
