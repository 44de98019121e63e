"""The start-up summary `vace-server serve` prints before it binds: where the API and the
playground are, where the key is, which model the workers load (and, for the tiny random model,
that it makes noise and where real weights come from). One block a newcomer can read at a
glance, instead of a key line somewhere among the logs.

The API process never imports torch (tests/api/test_import_weight.py), so `VACE_MODEL=auto`
is described, not resolved: the worker decides (CUDA or not) and announces its choice when it
is ready (`worker.supervisor`)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from vace_server.settings import Settings

CREATE_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
GPU_DOC = "docs/gpu.md"  # in the repository: GPUs, CUDA torch, downloading the weights
TINY_NOTE = (
    "the TINY RANDOM test model: videos are noise, not real generations "
    f"(real weights and GPUs: {GPU_DOC})"
)
AUTO_NOTE = (
    "auto: Wan-AI/Wan2.1-VACE-1.3B-diffusers when the worker finds a CUDA GPU, else "
    f"{TINY_NOTE}; the worker says which when it is ready"
)


@dataclass(frozen=True)
class KeySource:
    """Where the server's API keys come from (`api.app.build_keyring`)."""

    text: str  # shown after "API key:"
    generated_key: str | None = None  # a key generated on this start, shown once


def key_source(
    settings: Settings, *, count: int, file: Path | None, generated: str | None
) -> KeySource:
    if settings.accounts.auth_disabled:
        return KeySource("none needed (VACE_AUTH_DISABLED=true: every request is anonymous)")
    if file is None:
        return KeySource(f"{count} key(s) from VACE_API_KEYS")
    if generated:
        return KeySource(f"{generated} (generated now, stored in {file})", generated)
    return KeySource(f"stored in {file} (`cat {file}`)")


def browse_base(settings: Settings) -> str:
    """The base a person on this machine opens: the public base when set, else the bind
    address, with a wildcard bind (0.0.0.0, ::) shown as loopback."""
    if settings.http.public_base_url:
        return settings.resolved_public_base_url()
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http.port}"


def model_line(settings: Settings) -> str:
    """What the workers load, in words (VACE_MODEL; each served model's with VACE_MODELS)."""
    engine = settings.engine
    if not engine.served_models:
        return _model_words(engine.model)
    return "; ".join(
        f"{entry.name}: {_model_words(entry.weights or engine.model)}"
        for entry in engine.served_models
    )


def _model_words(model: str) -> str:
    model = model.strip()
    if model.lower() in ("tiny", "tiny-a14b"):
        return f"{model.lower()}, {TINY_NOTE}"
    if model.lower() == "auto":
        return AUTO_NOTE
    return model


def _version() -> str:
    try:
        return metadata.version("vace-server")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(source tree)"


def summary_lines(settings: Settings, keys: KeySource | None) -> list[str]:
    """The block, one line each (no trailing newline)."""
    base = browse_base(settings)
    workers = settings.queue.workers
    worker_text = (
        f"{workers} embedded, loading the model now (GET {base}/ready answers 200 once one is)"
        if workers
        else "none embedded (VACE_WORKERS=0): start `vace-server worker` against this database"
    )
    return [
        f"vace-server {_version()}",
        f"  API:        {base}{CREATE_PATH}",
        f"  Playground: {base}/playground",
        f"  API key:    {keys.text if keys else 'see VACE_API_KEYS'}",
        f"  Model:      {model_line(settings)}",
        f"  Workers:    {worker_text}",
        f"  Data:       {settings.store.data_dir.resolve()}",
    ]
