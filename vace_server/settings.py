"""One settings tree, read once from `VACE_*` environment variables and CLI flags, then injected."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
    "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
    "misshapen limbs, fused fingers, still picture, messy background, three legs, many people in "
    "the background, walking backwards"
)


_PATH_LIKE = re.compile(r"^(/|~|\.{1,2}(/|$))")


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


class Settings(BaseSettings):
    """Every knob of the server. Field `foo` is env `VACE_FOO`; a few are CLI flags too (cli.py)."""

    model_config = SettingsConfigDict(
        env_prefix="VACE_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,  # an infinite timeout or interval is a typo, never a choice
    )

    # --- HTTP ---
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

    # --- accounts ---
    api_keys: str = Field(
        default="",
        description="Comma-separated `key` or `key=account` entries; empty = generated key file.",
    )
    auth_disabled: bool = Field(default=False, description="Accept any or no key (anonymous).")

    # --- data ---
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="Default: SQLite in data_dir.")
    api_database_retry_seconds: float = Field(
        default=20.0,
        ge=0,
        description="How long an API request rides out a lost database before its 503.",
    )
    storage_url: str | None = Field(
        default=None,
        description="Outputs (and uploads) store: a folder (default data_dir/outputs) or "
        "s3://bucket/prefix (see the s3_* settings).",
    )
    url_signing_secret: str | None = Field(
        default=None, description="HMAC secret for output URLs; default: generated in data_dir."
    )
    database_retry_seconds: float = Field(
        default=20.0,
        gt=0,
        description="How long a worker's database call is retried across a lost connection "
        "(the API uses api_database_retry_seconds).",
    )
    retention_hours: float = Field(default=24.0, gt=0)
    task_timeout_hours: float = Field(default=3.0, gt=0)

    # --- object storage (storage_url=s3://bucket/prefix; any S3-compatible service) ---
    s3_endpoint_url: str | None = Field(
        default=None, description="e.g. http://minio:9000; default: AWS S3 of s3_region."
    )
    s3_region: str | None = Field(
        default=None, description="Signing region; default: boto3's (AWS_REGION...) or us-east-1."
    )
    s3_access_key_id: str | None = Field(
        default=None, description="Default: boto3's chain (AWS_* env, ~/.aws, instance role)."
    )
    s3_secret_access_key: str | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="`path` suits most self-hosted services (MinIO, Ceph, moto)."
    )
    s3_presign_max_seconds: int = Field(
        default=604_800,
        ge=1,
        le=604_800,
        description="Longest video_url lifetime; SigV4 presigned URLs allow at most 7 days.",
    )

    # --- rate limits (per account; off when unset) ---
    rate_limit_submit_per_second: float | None = None
    rate_limit_in_flight: int | None = None
    rate_limit_query_per_second: float | None = None
    rate_limits: str = Field(
        default="",
        description='Per-account overrides as JSON: {"acct": {"submit_per_second": 2, ...}}',
    )

    # --- webhooks ---
    webhook_url: str | None = Field(
        default=None, description="Receives every task's terminal state (besides per-request)."
    )
    webhook_secret: str | None = Field(
        default=None, description="whsec_<base64> signing secret; default: generated in data_dir."
    )
    webhook_timeout: float = Field(default=10.0, gt=0)

    # --- queue / workers ---
    workers: int = Field(default=1, ge=0, description="Worker child processes started by `serve`.")
    lease_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    poll_seconds: float = Field(default=0.25, gt=0)
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

    # --- engine ---
    model: str = Field(default="auto", description="auto | tiny | local folder | hub repo id")
    device: str = "auto"
    dtype: str = "auto"
    num_inference_steps: int | None = Field(default=None, ge=1, description="Default per model.")
    guidance_scale: float = Field(default=5.0, ge=0)
    flow_shift: float | None = Field(default=None, gt=0, description="Default per model.")
    generation_area: int | None = Field(
        default=None, ge=16 * 16, description="Pixels (at least one 16x16 cell); default per model."
    )
    num_frames: int = Field(default=81, ge=1, description="Generated frames (4n+1) at `fps`.")
    fps: int = Field(default=16, ge=1)
    output_fps: int = Field(default=30, ge=1)
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT
    model_cpu_offload: bool = False

    # --- annotators (issue: all five functions) ---
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

    # --- prompt rewriting (prompt_extend) ---
    prompt_rewrite_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL, e.g. http://host:8001/v1"
    )
    prompt_rewrite_model: str | None = None
    prompt_rewrite_api_key: str | None = None
    prompt_rewrite_timeout: float = Field(default=30.0, gt=0)

    # --- media ---
    media_allow_private_networks: bool = False
    media_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs media and webhooks may reach besides public "
        "addresses, e.g. an internal media host 10.1.2.0/24.",
    )

    @field_validator("media_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)  # a bad CIDR stops the server at start
        return value

    media_connect_timeout: float = Field(default=10.0, gt=0)
    media_read_timeout: float = Field(default=30.0, gt=0)
    media_total_timeout: float = Field(default=120.0, gt=0)
    media_max_redirects: int = Field(default=5, ge=0)
    media_user_agent: str = "DashScopeUserBot"
    watermark_font: Path | None = Field(
        default=None, description="TTF/OTF with CJK glyphs for the 'AI生成' watermark."
    )

    # --- checks of values that can never work (every entry point builds a Settings) ---
    @field_validator("num_frames")
    @classmethod
    def _frames_4n_plus_1(cls, value: int) -> int:
        if (value - 1) % 4:
            raise ValueError(f"must be 4n+1 (e.g. 81 or 17), not {value}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"VACE_HEARTBEAT_SECONDS={self.heartbeat_seconds:g} must be shorter than "
                f"VACE_LEASE_SECONDS={self.lease_seconds:g}, or every lease runs out"
            )
        return self

    def model_folder_problem(self) -> str | None:
        """Why `model`, written as a path (/…, ./…, ../…, ~…), cannot be a diffusers folder
        here, or None. Checked by the entry points that load the model on this machine (not
        a field check: API replicas and Ray drivers share the workers' settings without
        their folders). Names (auto, tiny), hub ids and relative folders are the loader's."""
        text = self.model.strip()
        if not _PATH_LIKE.match(text):
            return None
        folder = Path(text).expanduser()
        if not folder.is_dir():
            return f"VACE_MODEL={text!r}: the model folder does not exist (or is not a folder)"
        if not (folder / "model_index.json").is_file():
            return f"VACE_MODEL={text!r}: no model_index.json in it, so not a diffusers pipeline"
        return None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'vace.db').resolve()}"

    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def retention_ms(self) -> int:
        return int(self.retention_hours * 3_600_000)

    @property
    def worker_alive_ms(self) -> int:
        """A worker that has not beaten into the registry for this long counts as gone."""
        return int((3 * self.heartbeat_seconds + 5) * 1000)


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each refused setting by its environment variable, e.g.
    `VACE_NUM_FRAMES=80: must be 4n+1 (e.g. 81 or 17), not 80`."""
    parts = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            name = "VACE_" + "__".join(str(p) for p in error["loc"]).upper()
            parts.append(f"{name}={error.get('input')!r}: {message}")
        else:
            parts.append(message)
    return "; ".join(parts)
