"""The served-model registry, `VACE_MODELS`: which model names one deployment serves, and for
each the weights, the preset and the engine settings its workers run with.

`VACE_MODELS` is a JSON object keyed by model name (the `model` of a create request):

    {"<name>": {"model": "/models/vace-14b", "preset": "fast", "aliases": ["<other name>"],
                "settings": {"VACE_GUIDANCE_SCALE": 4}, "workers": 1}, ...}

Every key of an entry is optional: `model` is a `VACE_MODEL`-style value (default: the
deployment's `VACE_MODEL`), `preset` a `VACE_PRESET` value kept as a string override (so it
composes with whatever presets the engine knows), `aliases` more names for the same model,
`settings` engine settings by flat name (`VACE_NUM_INFERENCE_STEPS` or `num_inference_steps`)
and `workers` how many embedded workers `serve` starts for it (default `VACE_WORKERS`).

Unset (the default), the deployment serves one model under the API's own names, exactly as
before the registry existed; this module never names a model itself (wire names live in
`api/`). Parsed here, torch-free, so the API and every launcher read the same table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = [
    "ENTRY_KEYS",
    "NOT_OVERRIDABLE",
    "ServedModel",
    "check_registry",
    "choose_entry",
    "parse_models",
]

ENTRY_KEYS = frozenset({"model", "preset", "aliases", "settings", "workers"})
# Engine fields an entry may not set through `settings`: the registry's own, and the weights,
# which have their own key.
NOT_OVERRIDABLE = frozenset({"model", "models", "served_model"})
# Engine fields the worker launcher reads once for every worker it starts (the size of a GPU
# group), so a per-model value would be ignored.
LAUNCHER_WIDE = frozenset({"gpus_per_task"})
_MAX_NAME = 64  # the tasks table's model_name column


@dataclass(frozen=True)
class ServedModel:
    """One served model: its names (the first is its own, the rest aliases) and how its
    workers load it."""

    name: str
    aliases: tuple[str, ...] = ()
    weights: str | None = None  # a VACE_MODEL value; None = the deployment's VACE_MODEL
    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # engine field -> value
    workers: int | None = None  # embedded workers for it; None = VACE_WORKERS

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a create request may give for this model."""
        return (self.name, *self.aliases)

    def engine_changes(self) -> dict[str, Any]:
        """The engine fields this model's workers change: weights, preset, overrides."""
        changes = dict(self.overrides)
        if self.weights is not None:
            changes["model"] = self.weights
        if self.preset is not None:
            changes["preset"] = self.preset
        return changes


def parse_models(text: str, engine_fields: frozenset[str]) -> tuple[ServedModel, ...]:
    """`VACE_MODELS`' entries, in the order written ("" or blank: none, the default model).

    `engine_fields` are the names an entry's `settings` may use. Raises: ValueError with one
    line naming the entry and what is wrong (not JSON, unknown key, a name twice, ...)."""
    return _parse(text, engine_fields)


@lru_cache(maxsize=16)
def _parse(text: str, engine_fields: frozenset[str]) -> tuple[ServedModel, ...]:
    if not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ValueError('want {"model name": {"model": ..., "preset": ...}, ...}')
    entries = tuple(_entry(name, body, engine_fields) for name, body in raw.items())
    seen: set[str] = set()
    for entry in entries:
        for name in entry.names:
            if name in seen:
                raise ValueError(f"the model name {name!r} is given twice")
            seen.add(name)
    return entries


def _entry(name: str, body: Any, engine_fields: frozenset[str]) -> ServedModel:
    _check_name(name)
    if not isinstance(body, dict):
        raise ValueError(f'{name}: want an object such as {{"model": "/models/..."}}')
    unknown = sorted(set(body) - ENTRY_KEYS)
    if unknown:
        raise ValueError(f"{name}: unknown keys {unknown} (known: {sorted(ENTRY_KEYS)})")
    aliases = body.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ValueError(f"{name}: aliases must be a list of names")
    for alias in aliases:
        _check_name(alias)
    workers = body.get("workers")
    if workers is not None and (type(workers) is not int or workers < 0):
        raise ValueError(f"{name}: workers must be a whole number >= 0")
    return ServedModel(
        name=name,
        aliases=tuple(aliases),
        weights=_text(body, "model", name),
        preset=_text(body, "preset", name),
        overrides=_overrides(name, body.get("settings", {}), engine_fields),
        workers=workers,
    )


def _check_name(name: str) -> None:
    if not name or len(name) > _MAX_NAME or not name.isprintable() or name != name.strip():
        raise ValueError(f"{name!r} is not a model name (1-{_MAX_NAME} printable characters)")


def _text(body: Mapping[str, Any], key: str, name: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: {key} must be a non-empty string")
    return value.strip()


def _overrides(name: str, raw: Any, engine_fields: frozenset[str]) -> dict[str, Any]:
    """`{"VACE_GUIDANCE_SCALE": 4}` -> `{"guidance_scale": 4}`; only engine fields."""
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: settings must be an object of VACE_* names")
    overrides: dict[str, Any] = {}
    for key, value in raw.items():
        field_name = key.lower().removeprefix("vace_")
        if field_name in NOT_OVERRIDABLE:
            raise ValueError(f"{name}: {key} cannot be set per model (use the entry's keys)")
        if field_name in LAUNCHER_WIDE:
            raise ValueError(
                f"{name}: {key} cannot be set per model: the worker launcher sizes every GPU "
                f"group from the deployment's VACE_{field_name.upper()} (or --gpus-per-task)"
            )
        if field_name not in engine_fields:
            raise ValueError(f"{name}: {key} is not an engine setting")
        overrides[field_name] = value
    return overrides


def choose_entry(entries: tuple[ServedModel, ...], served_model: str) -> ServedModel | None:
    """The entry named `served_model` (a name or an alias), or the only one when it is "";
    None without entries. Raises: ValueError (several entries and none chosen)."""
    if not entries:
        return None
    if not served_model:
        if len(entries) == 1:
            return entries[0]
        names = ", ".join(e.name for e in entries)
        raise ValueError(
            f"VACE_MODELS serves several models ({names}): set VACE_SERVED_MODEL to the one "
            "this worker serves"
        )
    return next(e for e in entries if served_model in e.names)


def check_registry(engine: BaseModel, entries: tuple[ServedModel, ...], served_model: str) -> None:
    """Load-time checks of the registry against the engine group `engine`: VACE_SERVED_MODEL
    names an entry, and each entry's engine settings pass the group's own checks.
    Raises: ValueError, one line naming the entry and the setting."""
    if served_model and not any(served_model in e.names for e in entries):
        served = ", ".join(n for e in entries for n in e.names) or "none: VACE_MODELS unset"
        raise ValueError(
            f"VACE_SERVED_MODEL={served_model!r} is not in VACE_MODELS (served: {served})"
        )
    fields = type(engine).model_fields
    for entry in entries:
        changes = entry.engine_changes()
        if "preset" in changes and "preset" not in fields:
            raise ValueError(f"VACE_MODELS: {entry.name}: this build has no VACE_PRESET")
        values = {**dict(engine), **changes, "models": "", "served_model": ""}
        try:
            type(engine).model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors(include_url=False))
            raise ValueError(f"VACE_MODELS: {entry.name}: {problems}") from None


def _problem(error: Any) -> str:
    """One validation error as a line: the setting and its value when the error has a field
    (a model-level check, e.g. `fast` without its LoRA, has none and names it itself)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = "_".join(str(part) for part in error["loc"]).upper()
    return f"VACE_{name}={error.get('input')!r}: {message}"
