"""The groups of `Settings` (`settings/__init__.py`): one frozen model per concern, each field
read from its flat `VACE_<FIELD>` environment variable, its values checked when the settings
load (a value that can never work stops every entry point, not the first task)."""

from __future__ import annotations

import importlib
import ipaddress
import json
import math
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vace_server.settings.models import ServedModel, check_registry, choose_entry, parse_models
from vace_server.settings.speedups import RING_BACKENDS, SpeedupFields

DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
    "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
    "misshapen limbs, fused fingers, still picture, messy background, three legs, many people in "
    "the background, walking backwards"
)
LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
DEFAULT_LOG_LEVEL: LogLevel = "INFO"

# The names the loader maps to a torch dtype (engine/loader.py); settings stay torch-free.
DTYPE_NAMES = ("auto", "float32", "fp32", "float", "bfloat16", "bf16", "float16", "fp16", "half")
# torch's device types; whether this machine has one is the loader's question, not ours.
_DEVICE_TYPES = frozenset(
    {"cpu", "cuda", "mps", "xpu", "xla", "hip", "meta", "hpu", "mtia", "ipu", "ve", "vulkan"}
    | {"lazy", "maia", "privateuseone"}
)
_DEVICE = re.compile(r"^([a-z]+)(:\d+)?$")
_RATE_LIMIT_KEYS = ("submit_per_second", "in_flight", "query_per_second")
# libx264's speed presets, fastest first: slower ones spend CPU for a smaller file at the same crf.
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs (`"10.1.2.0/24, 127.0.0.2/32, fd00::/8"`; a bare address is its
    /32 or /128), the format of `media_allowed_networks`; here so that settings validates it
    at load without importing media/ (media reads it through this function).

    Returns: the networks. Raises: ValueError naming a bad entry (also one with host bits
    set, such as 10.1.2.3/24)."""
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError as exc:
            raise ValueError(f"bad network {entry!r} in the allowed networks: {exc}") from None
    return tuple(networks)


def parse_loras(text: str) -> tuple[tuple[str, float], ...]:
    """`"/loras/a.safetensors:0.8, /loras/b.safetensors"` -> ((path, scale), ...), the format of
    `loras` (scale 1 when none is given; the text after the last ':' is a scale only when it
    reads as a number, so a Windows drive letter stays part of the path). Here so settings
    validates it at load without importing engine/ (the loader reads it through this).

    Returns: the entries. Raises: ValueError naming a bad entry (empty path, scale not finite)."""
    entries: list[tuple[str, float]] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        path, scale = entry, 1.0
        head, sep, tail = entry.rpartition(":")
        if sep:
            try:
                path, scale = head.strip(), float(tail)
            except ValueError:
                path, scale = entry, 1.0
        if not path:
            raise ValueError(f"LoRA entry {entry!r} has no path (want path[:scale])")
        if not math.isfinite(scale):
            raise ValueError(f"LoRA entry {entry!r}: the scale must be a finite number")
        entries.append((path, scale))
    return tuple(entries)


class SettingsGroup(BaseModel):
    """A group of settings: frozen, strict about names, no infinities (an infinite timeout or
    interval is a typo, never a choice)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _http_url(value: str | None) -> str | None:
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise ValueError(f"must be an http:// or https:// URL, not {value!r}")
    return value


class HttpSettings(SettingsGroup):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_base_url: str | None = Field(
        default=None,
        description="Absolute base for links we hand out (video_url); default http://host:port.",
    )
    time_zone: str = Field(default="UTC", description="Zone of the query's time strings.")
    region: str = "cn-beijing"
    max_request_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body (bytes) outside the upload receiver; larger: 413.",
    )
    request_body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request body that sends nothing for this long is answered 408.",
    )

    _base_url = field_validator("public_base_url")(_http_url)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class AccountSettings(SettingsGroup):
    """Who may call the API, and how often (rate limits per account; off when unset)."""

    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated `key` or `key=account` entries; empty = generated key file.",
    )
    auth_disabled: bool = Field(default=False, description="Accept any or no key (anonymous).")
    rate_limit_submit_per_second: float | None = Field(default=None, gt=0)
    rate_limit_in_flight: int | None = Field(default=None, ge=0)
    rate_limit_query_per_second: float | None = Field(default=None, gt=0)
    rate_limit_shared: bool = Field(
        default=True,
        description="Token buckets in the database, shared by every API replica "
        "(false: each API process counts alone, so N replicas allow N times the limit).",
    )
    rate_limits: str = Field(
        default="",
        description='Per-account overrides as JSON: {"acct": {"submit_per_second": 2, ...}}',
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_named(cls, value: SecretStr) -> SecretStr:
        for entry in value.get_secret_value().split(","):
            if entry.strip() and not entry.partition("=")[0].strip():
                raise ValueError("an entry has no key before its '=' (want key or key=account)")
        return value

    @field_validator("rate_limits")
    @classmethod
    def _overrides_shape(cls, value: str) -> str:
        if not value.strip():
            return value
        try:
            raw = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise ValueError('want {"account": {"submit_per_second": 2, ...}, ...}')
        for account, limits in raw.items():
            unknown = sorted(set(limits) - set(_RATE_LIMIT_KEYS))
            if unknown:
                raise ValueError(f"unknown keys {unknown} for {account!r}")
            for key, number in limits.items():
                if number is not None and (isinstance(number, bool) or number < 0):
                    raise ValueError(f"{account}.{key} must be a number >= 0 or null")
        return value


class StoreSettings(SettingsGroup):
    """The task database and the data folder (default home of the database and secrets)."""

    data_dir: Path = Path("data")
    database_url: SecretStr | None = Field(default=None, description="Default: SQLite in data_dir.")
    api_database_retry_seconds: float = Field(
        default=20.0,
        ge=0,
        description="How long an API request rides out a lost database before its 503.",
    )
    database_retry_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long a worker's database call is retried across a lost connection "
        "(the API uses api_database_retry_seconds).",
    )
    retention_hours: float = Field(default=24.0, gt=0)
    task_timeout_hours: float = Field(default=3.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: SecretStr | None) -> SecretStr | None:
        url = value.get_secret_value() if value else ""
        if _is_postgres(url) and (
            problem := missing_extra("psycopg", "postgres", "a PostgreSQL VACE_DATABASE_URL")
        ):
            raise ValueError(problem)
        return value


def missing_extra(module: str, extra: str, what: str) -> str | None:
    """One line naming the extra to install when `module` (a driver only some deployments
    need, kept out of the default install) cannot be imported, or None. Imported, not just
    looked up, so a broken install is caught here too, not as a traceback at first use."""
    try:
        importlib.import_module(module)
    except ImportError:
        return f"{what} needs {module}, which is not installed: pip install 'vace-server[{extra}]'"
    return None


def _is_postgres(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0].lower() in ("postgres", "postgresql")


def storage_url_problem(url: str) -> str | None:
    """Why `url` cannot be a `VACE_STORAGE_URL` (another scheme than s3:// or file://, or an
    s3:// URL without a bucket), or None. Checked at load and by `storage.base`, which reads
    the URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "s3" and not parts.netloc:
        return "names no bucket (s3://bucket/prefix)"
    if scheme not in ("s3", "file") and len(scheme) > 1:  # one letter: a Windows drive
        return "only s3:// URLs and folders are supported"
    return None


class StorageSettings(SettingsGroup):
    """Outputs and uploads: a folder, or any S3-compatible service (storage_url=s3://…)."""

    storage_url: str | None = Field(
        default=None,
        description="Outputs (and uploads) store: a folder (default data_dir/outputs) or "
        "s3://bucket/prefix (see the s3_* settings).",
    )
    url_signing_secret: SecretStr | None = Field(
        default=None, description="HMAC secret for output URLs; default: generated in data_dir."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="e.g. http://minio:9000; default: AWS S3 of s3_region."
    )
    s3_region: str | None = Field(
        default=None, description="Signing region; default: boto3's (AWS_REGION...) or us-east-1."
    )
    s3_access_key_id: str | None = Field(
        default=None, description="Default: boto3's chain (AWS_* env, ~/.aws, instance role)."
    )
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="`path` suits most self-hosted services (MinIO, Ceph, moto)."
    )
    s3_presign_max_seconds: int = Field(
        default=604_800,
        ge=1,
        le=604_800,
        description="Longest video_url lifetime; SigV4 presigned URLs allow at most 7 days.",
    )

    @field_validator("storage_url")
    @classmethod
    def _storage_scheme(cls, value: str | None) -> str | None:
        if value and (problem := storage_url_problem(value)):
            raise ValueError(problem)
        s3 = bool(value) and urlsplit(value or "").scheme.lower() == "s3"
        if s3 and (problem := missing_extra("boto3", "s3", "an s3:// VACE_STORAGE_URL")):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> StorageSettings:
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError(
                "set both VACE_S3_ACCESS_KEY_ID and VACE_S3_SECRET_ACCESS_KEY, or neither"
            )
        return self


class WebhookSettings(SettingsGroup):
    webhook_url: str | None = Field(
        default=None, description="Receives every task's terminal state (besides per-request)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="whsec_<base64> signing secret; default: generated in data_dir."
    )
    webhook_timeout: float = Field(default=10.0, gt=0)

    _url = field_validator("webhook_url")(_http_url)


class QueueSettings(SettingsGroup):
    """Leases, heartbeats and retries of the task queue, and the workers `serve` starts."""

    workers: int = Field(default=1, ge=0, description="Worker child processes started by `serve`.")
    lease_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    poll_seconds: float = Field(default=0.25, gt=0)
    local_wakeups: bool = Field(
        default=True,
        description="SQLite: wake idle workers of this machine through a local socket the "
        "moment a task is claimable (off: they poll every poll_seconds).",
    )
    maintenance_seconds: float = Field(default=5.0, gt=0)
    stop_grace_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On a graceful stop, how long a busy worker may go on with its task; "
        "then the task goes back to the queue (its attempt not counted).",
    )
    restart_stable_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A worker child that ran this long restarts without accumulated backoff.",
    )
    prefetch: int = Field(
        default=1,
        ge=0,
        le=8,
        description="Tasks a worker claims and preprocesses ahead while its model runs one "
        "(0: one task at a time, claim to store).",
    )
    prefetch_memory_mb: int = Field(
        default=2048,
        ge=0,
        description="Prepared inputs and finished frames a pipelined worker may hold besides "
        "the task on its model; a look-ahead task over it is prepared again in its turn.",
    )

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> QueueSettings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"VACE_HEARTBEAT_SECONDS={self.heartbeat_seconds:g} must be shorter than "
                f"VACE_LEASE_SECONDS={self.lease_seconds:g}, or every lease runs out"
            )
        return self


class EngineSettings(SettingsGroup, SpeedupFields):
    # The acceleration switches (VACE_ATTENTION_BACKEND, VACE_CACHE, ...) are SpeedupFields'.
    model: str = Field(default="auto", description="auto | tiny | local folder | hub repo id")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps ...")
    dtype: str = Field(default="auto", description="auto | float32 | bfloat16 | float16")
    preset: Literal["quality", "balanced", "fast"] = Field(
        default="quality",
        description="Speed preset: steps, guidance, shift, scheduler (and fast's distill LoRA); "
        "explicit num_inference_steps / guidance_scale / flow_shift still win.",
    )
    distill_lora: Path | None = Field(
        default=None,
        description="The step-distill LoRA file (.safetensors) the fast preset fuses (on a "
        "two-expert model: into both experts, or the high-noise one with distill_lora_2 set).",
    )
    distill_lora_2: Path | None = Field(
        default=None,
        description="Two-expert models (Wan2.2 A14B): the low-noise expert's (transformer_2) "
        "distill LoRA, where its authors publish a pair.",
    )
    loras: str = Field(
        default="",
        description="User LoRAs fused at load: comma-separated path[:scale] (scale default 1); "
        "on a two-expert model into both experts, or the high-noise one with loras_2 set.",
    )
    loras_2: str | None = Field(
        default=None,
        description="Two-expert models: the low-noise expert's (transformer_2) LoRAs, same "
        "format as loras; unset = the same as loras, empty = none.",
    )
    prompt_cache_size: int = Field(
        default=32, ge=0, description="Encoded prompts kept per worker (LRU); 0 = off."
    )
    num_inference_steps: int | None = Field(default=None, ge=1, description="Default per preset.")
    guidance_scale: float | None = Field(default=None, ge=0, description="Default per preset.")
    flow_shift: float | None = Field(default=None, gt=0, description="Default per preset/model.")
    generation_area: int | None = Field(
        default=None, ge=16 * 16, description="Pixels (at least one 16x16 cell); default per model."
    )
    num_frames: int = Field(default=81, ge=1, description="Generated frames (4n+1) at `fps`.")
    fps: int = Field(default=16, ge=1)
    output_fps: int = Field(default=30, ge=1)
    output_x264_preset: X264Preset = Field(
        default="superfast",
        description="libx264 speed preset for the delivered MP4 (docs/benchmarks.md, encoder).",
    )
    output_crf: int = Field(
        default=18, ge=0, le=51, description="libx264 constant rate factor: lower = better, larger."
    )
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    model_cpu_offload: bool = False
    models: str = Field(
        default="",
        description="Served-model registry as JSON (settings/models.py); empty = one model.",
    )
    served_model: str = Field(
        default="",
        description="The VACE_MODELS name this worker serves (a worker serves one model).",
    )

    gpus_per_task: int = Field(
        default=1, ge=1, le=64, description="Devices one task runs across (context parallel)."
    )
    context_parallel: Literal["ulysses", "ring"] = Field(
        default="ulysses", description="How a group shards the sequence (ring needs a GPU)."
    )

    @property
    def served_models(self) -> tuple[ServedModel, ...]:
        """VACE_MODELS' entries; () when unset (one model, under the API's own names)."""
        return parse_models(self.models, frozenset(type(self).model_fields))

    def served_entry(self) -> ServedModel | None:
        """The entry this worker serves: VACE_SERVED_MODEL's (a name or an alias), or the only
        one; None without a registry. Raises: ValueError (several served, none chosen)."""
        return choose_entry(self.served_models, self.served_model)

    @model_validator(mode="after")
    def _ring_has_its_kernel(self) -> EngineSettings:
        # Checked here, not when the ranks shard the model: a refusal there would only
        # restart the group again and again.
        ring = self.gpus_per_task > 1 and self.context_parallel == "ring"
        if ring and self.attention_backend not in RING_BACKENDS:
            raise ValueError(
                f"VACE_CONTEXT_PARALLEL=ring needs VACE_ATTENTION_BACKEND set to one of "
                f"{', '.join(sorted(RING_BACKENDS))} (a GPU kernel returning the log-sum-exp), "
                f"not {self.attention_backend!r}; or use ulysses"
            )
        return self

    @model_validator(mode="after")
    def _registry_valid(self) -> EngineSettings:
        try:
            entries = self.served_models
        except ValueError as exc:
            raise ValueError(f"VACE_MODELS: {exc}") from None
        check_registry(self, entries, self.served_model)
        return self

    @field_validator("num_frames")
    @classmethod
    def _frames_4n_plus_1(cls, value: int) -> int:
        if (value - 1) % 4:
            raise ValueError(f"must be 4n+1 (e.g. 81 or 17), not {value}")
        return value

    @field_validator("loras", "loras_2")
    @classmethod
    def _loras_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_loras(value)  # a bad entry stops the server at start; the files: the loader's
        return value

    @model_validator(mode="after")
    def _fast_has_lora(self) -> EngineSettings:
        if self.preset == "fast" and self.distill_lora is None:
            raise ValueError(
                "VACE_PRESET=fast needs VACE_DISTILL_LORA=<file>: the step-distill LoRA it fuses "
                "(download command in docs/presets.md)"
            )
        return self

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        if value.strip().lower().removeprefix("torch.") not in DTYPE_NAMES:
            raise ValueError("not one of auto, float32, bfloat16, float16 (fp32, bf16, fp16)")
        return value

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, value: str) -> str:
        text = value.strip().lower()
        match = _DEVICE.match(text)
        if text != "auto" and not (match and match.group(1) in _DEVICE_TYPES):
            raise ValueError("not a torch device (auto, cpu, cuda, cuda:N, mps ...)")
        return value


class AnnotatorSettings(SettingsGroup):
    annotator_dir: Path | None = Field(
        default=None,
        description="Folder of annotator checkpoints (depth/, pose/, sam2/ ...); none = classical.",
    )
    segmentation_backend: Literal["auto", "model", "classical"] = "auto"
    tracking_backend: Literal["auto", "model", "classical"] = "auto"
    scribble_style: Literal["canny", "xdog"] = "canny"
    edit_reference_role: Literal["obj", "bg"] = Field(
        default="obj", description="video_edit's single reference: obj (cut out) or bg (kept)"
    )


class PromptRewriteSettings(SettingsGroup):
    """prompt_extend: an OpenAI-compatible chat endpoint rewrites prompts (off when unset)."""

    prompt_rewrite_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL, e.g. http://host:8001/v1"
    )
    prompt_rewrite_model: str | None = None
    prompt_rewrite_api_key: SecretStr | None = None
    prompt_rewrite_timeout: float = Field(default=30.0, gt=0)

    _url = field_validator("prompt_rewrite_url")(_http_url)


class MediaSettings(SettingsGroup):
    """Fetching media by URL (what it may reach, how long it may take) and the output mark."""

    media_allow_private_networks: bool = False
    media_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs media and webhooks may reach besides public "
        "addresses, e.g. an internal media host 10.1.2.0/24.",
    )
    media_connect_timeout: float = Field(default=10.0, gt=0)
    media_read_timeout: float = Field(default=30.0, gt=0)
    media_total_timeout: float = Field(default=120.0, gt=0)
    media_max_redirects: int = Field(default=5, ge=0)
    media_user_agent: str = "DashScopeUserBot"
    watermark_font: Path | None = Field(
        default=None, description="TTF/OTF for the 'AI生成' watermark (default: the bundled font)."
    )

    @field_validator("media_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)  # a bad CIDR stops the server at start
        return value


class LoggingSettings(SettingsGroup):
    log_level: LogLevel = DEFAULT_LOG_LEVEL
    log_format: Literal["json", "text"] = "json"

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: Any) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()


# Group attribute on Settings -> its model. Field names are unique across groups, which is what
# keeps the flat environment names (and flat keyword arguments) unambiguous.
GROUPS: dict[str, type[SettingsGroup]] = {
    "http": HttpSettings,
    "accounts": AccountSettings,
    "store": StoreSettings,
    "storage": StorageSettings,
    "webhooks": WebhookSettings,
    "queue": QueueSettings,
    "engine": EngineSettings,
    "annotators": AnnotatorSettings,
    "prompt_rewrite": PromptRewriteSettings,
    "media": MediaSettings,
    "logging": LoggingSettings,
}
# Flat field name (and `VACE_<NAME>`) -> its group.
GROUP_OF: dict[str, str] = {
    field: group for group, model in GROUPS.items() for field in model.model_fields
}
SECRET_FIELDS = frozenset(
    field
    for model in GROUPS.values()
    for field, info in model.model_fields.items()
    if "SecretStr" in str(info.annotation)
)
