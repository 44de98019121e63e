"""LoRAs fused into the transformer once, at load: the `fast` preset's step-distill LoRA
(`VACE_DISTILL_LORA`) and the user's (`VACE_LORAS`, e.g. style LoRAs; VACE runs plain Wan2.1
LoRAs, which touch the shared blocks and leave the VACE control blocks as they are).

Each file goes through diffusers' own `load_lora_weights` (which reads the diffusers, the
original Wan and the ComfyUI key layouts), then `set_adapters` with the scales and one
`fuse_lora`, then `unload_lora_weights`: the deltas stay in the weights and the PEFT layers
go, so a step costs what it cost without LoRAs. Files are read from disk only, never
downloaded."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vace_server.settings import EngineSettings, parse_loras

__all__ = ["LoraError", "LoraFile", "apply_loras", "configured_loras"]

log = logging.getLogger(__name__)


class LoraError(RuntimeError):
    """A configured LoRA cannot be used; the message names the setting, the file and the fix."""


@dataclass(frozen=True)
class LoraFile:
    path: Path
    scale: float
    setting: str  # the VACE_* name it came from, for error messages
    adapter: str  # the PEFT adapter name it loads under


def configured_loras(engine: EngineSettings, *, distill: bool) -> list[LoraFile]:
    """The LoRAs to fuse: the distill LoRA first when the preset uses it, then `engine.loras`.

    Raises: LoraError for a file that does not exist (checked before any weight is read)."""
    files: list[LoraFile] = []
    if distill and engine.distill_lora is not None:
        files.append(LoraFile(Path(engine.distill_lora), 1.0, "VACE_DISTILL_LORA", "distill"))
    for index, (path, scale) in enumerate(parse_loras(engine.loras)):
        files.append(LoraFile(Path(path), scale, "VACE_LORAS", f"user_{index}"))
    for lora in files:
        if not lora.path.expanduser().is_file():
            raise LoraError(
                f"{lora.setting}: LoRA file {str(lora.path)!r} does not exist. Download it first "
                "(commands in docs/presets.md); the server never downloads LoRAs itself."
            )
    return files


def apply_loras(pipe: Any, loras: list[LoraFile]) -> None:
    """Loads every LoRA into `pipe.transformer`, fuses them at their scales and drops the
    adapter layers. No LoRAs: nothing happens (diffusers and PEFT are not touched).

    Raises: LoraError when PEFT is missing or a file is not a LoRA for this transformer.
    Side effects: changes the transformer's weights in place."""
    if not loras:
        return
    if importlib.util.find_spec("peft") is None:
        raise LoraError(
            f"{loras[0].setting} is set but the `peft` package, which diffusers loads LoRAs "
            "with, is not installed: pip install 'peft==0.21.0'."
        )
    for lora in loras:
        try:
            pipe.load_lora_weights(str(lora.path.expanduser()), adapter_name=lora.adapter)
        except Exception as exc:
            raise LoraError(
                f"{lora.setting}: {str(lora.path)!r} is not a LoRA this model can load "
                f"({type(exc).__name__}: {str(exc).strip()[:300]}). Use a Wan2.1 LoRA made for "
                "this model size (a 14B LoRA does not fit 1.3B)."
            ) from exc
        if lora.adapter not in pipe.get_list_adapters().get("transformer", []):
            # diffusers only warns when no key matches; a LoRA that changes nothing is an error
            raise LoraError(
                f"{lora.setting}: {str(lora.path)!r} is not a LoRA this model can load: none of "
                "its weights belong to this transformer. Use a Wan2.1 LoRA for this model."
            )
    names = [lora.adapter for lora in loras]
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
    pipe.fuse_lora(components=["transformer"], lora_scale=1.0, adapter_names=names)
    pipe.unload_lora_weights()  # fused: the deltas are in the weights, the PEFT layers can go
    log.info(
        "fused LoRAs into the transformer: %s",
        ", ".join(f"{lora.path.name} x{lora.scale:g}" for lora in loras),
    )
