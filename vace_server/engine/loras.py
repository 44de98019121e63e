"""LoRAs fused into the transformer once, at load: the `fast` preset's step-distill LoRA
(`VACE_DISTILL_LORA`) and the user's (`VACE_LORAS`, e.g. style LoRAs; VACE runs plain Wan2.1
LoRAs, which touch the shared blocks and leave the VACE control blocks as they are).

A two-expert model (Wan2.2 A14B: `transformer` denoises the high-noise steps, `transformer_2`
the rest) takes each LoRA into both experts, unless `VACE_DISTILL_LORA_2` / `VACE_LORAS_2`
name the low-noise expert's own files (step-distill LoRAs for A14B come as such a pair).

Each file goes through diffusers' own `load_lora_weights` (which reads the diffusers, the
original Wan and the ComfyUI key layouts; `load_into_transformer_2` for the second expert),
then each expert's `set_adapters` with the scales and one `fuse_lora`, then
`unload_lora_weights`: the deltas stay in the weights and the PEFT layers go, so a step costs
what it cost without LoRAs. Files are read from disk only, never downloaded."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vace_server.settings import EngineSettings, parse_loras

__all__ = ["LoraError", "LoraFile", "apply_loras", "configured_loras"]

log = logging.getLogger(__name__)


class LoraError(RuntimeError):
    """A configured LoRA cannot be used; the message names the setting, the file and the fix."""


# Which denoiser a LoRA goes into: one of the two, or both on a two-expert model (on a
# one-expert model "both" is the only transformer).
FIRST, SECOND, BOTH = "transformer", "transformer_2", "both"


@dataclass(frozen=True)
class LoraFile:
    path: Path
    scale: float
    setting: str  # the VACE_* name it came from, for error messages
    adapter: str  # the PEFT adapter name it loads under
    target: str = BOTH  # FIRST, SECOND or BOTH


def configured_loras(engine: EngineSettings, *, distill: bool) -> list[LoraFile]:
    """The LoRAs to fuse: the distill LoRA(s) first when the preset uses one, then the user's.

    Raises: LoraError for a file that does not exist (checked before any weight is read)."""
    files: list[LoraFile] = []
    if distill and engine.distill_lora is not None:
        first = BOTH if engine.distill_lora_2 is None else FIRST
        files.append(
            LoraFile(Path(engine.distill_lora), 1.0, "VACE_DISTILL_LORA", "distill", first)
        )
        if engine.distill_lora_2 is not None:
            second = Path(engine.distill_lora_2)
            files.append(LoraFile(second, 1.0, "VACE_DISTILL_LORA_2", "distill_2", SECOND))
    first = BOTH if engine.loras_2 is None else FIRST
    for index, (path, scale) in enumerate(parse_loras(engine.loras)):
        files.append(LoraFile(Path(path), scale, "VACE_LORAS", f"user_{index}", first))
    for index, (path, scale) in enumerate(parse_loras(engine.loras_2 or "")):
        files.append(LoraFile(Path(path), scale, "VACE_LORAS_2", f"user_2_{index}", SECOND))
    for lora in files:
        if not lora.path.expanduser().is_file():
            raise LoraError(
                f"{lora.setting}: LoRA file {str(lora.path)!r} does not exist. Download it first "
                "(commands in docs/presets.md); the server never downloads LoRAs itself."
            )
    return files


def apply_loras(pipe: Any, loras: list[LoraFile]) -> None:
    """Loads every LoRA into its expert(s) (`target`), fuses them at their scales and drops
    the adapter layers. No LoRAs: nothing happens (diffusers and PEFT are not touched).

    Raises: LoraError when PEFT is missing, a file is not a LoRA for this transformer, or a
    low-noise expert's LoRA is configured for a model that has one transformer.
    Side effects: changes the transformers' weights in place."""
    if not loras:
        return
    if importlib.util.find_spec("peft") is None:
        raise LoraError(
            f"{loras[0].setting} is set but the `peft` package, which diffusers loads LoRAs "
            "with, is not installed: pip install 'peft==0.21.0'."
        )
    placed = _placed(pipe, loras)
    for lora, component in placed:
        _load(pipe, lora, component)
    components = [c for c in (FIRST, SECOND) if any(c == where for _, where in placed)]
    for component in components:
        mine = [lora for lora, where in placed if where == component]
        getattr(pipe, component).set_adapters(
            [lora.adapter for lora in mine], weights=[lora.scale for lora in mine]
        )
    pipe.fuse_lora(components=components, lora_scale=1.0)
    pipe.unload_lora_weights()  # fused: the deltas are in the weights, the PEFT layers can go
    log.info(
        "fused LoRAs into %s: %s",
        " and ".join(components),
        ", ".join(f"{lora.path.name} x{lora.scale:g}" for lora in loras),
    )


def _placed(pipe: Any, loras: list[LoraFile]) -> list[tuple[LoraFile, str]]:
    """Each LoRA with the component it goes into (a BOTH one twice on a two-expert model,
    the second time under its adapter name + "_e2"). Raises: LoraError (see apply_loras)."""
    two_experts = getattr(pipe, SECOND, None) is not None
    placed: list[tuple[LoraFile, str]] = []
    for lora in loras:
        if lora.target == SECOND and not two_experts:
            raise LoraError(
                f"{lora.setting} is set but this model has one transformer: it is for the "
                "low-noise expert of a two-expert model (Wan2.2 A14B). Unset it, or put the "
                "file in the setting without _2."
            )
        if lora.target in (FIRST, BOTH):
            placed.append((lora, FIRST))
        if two_experts and lora.target == BOTH:
            placed.append((replace(lora, adapter=f"{lora.adapter}_e2"), SECOND))
        elif lora.target == SECOND:
            placed.append((lora, SECOND))
    return placed


def _load(pipe: Any, lora: LoraFile, component: str) -> None:
    """One LoRA file into one expert, checked to have changed something there."""
    try:
        pipe.load_lora_weights(
            str(lora.path.expanduser()),
            adapter_name=lora.adapter,
            **({"load_into_transformer_2": True} if component == SECOND else {}),
        )
    except Exception as exc:
        raise LoraError(
            f"{lora.setting}: {str(lora.path)!r} is not a LoRA this model can load "
            f"({type(exc).__name__}: {str(exc).strip()[:300]}). Use a Wan LoRA made for "
            "this model size (a 14B LoRA does not fit 1.3B)."
        ) from exc
    if lora.adapter not in pipe.get_list_adapters().get(component, []):
        # diffusers only warns when no key matches; a LoRA that changes nothing is an error
        raise LoraError(
            f"{lora.setting}: {str(lora.path)!r} is not a LoRA this model can load: none of "
            f"its weights belong to this model's {component}. Use a Wan LoRA for this model."
        )
