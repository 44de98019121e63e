"""One settings tree, read once from `VACE_*` environment variables and CLI flags, then injected."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vace_server.media.addresses import parse_networks

DEFAULT_NEGATIVE_PROMPT = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
    "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
    "misshapen limbs, fused fingers, still picture, messy background, three legs, many people in "
    "the background, walking backwards"
)


class Settings(BaseSettings):
    """Every knob of the server. Field `foo` is env `VACE_FOO` and CLI flag `--foo`."""

    model_config = SettingsConfigDict(
        env_prefix="VACE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    # --- HTTP ---
    host: str = "127.0.0.1"
    port: int = 8000
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
    retention_hours: float = 24.0
    task_timeout_hours: float = 3.0

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
    webhook_timeout: float = 10.0

    # --- queue / workers ---
    workers: int = Field(default=1, description="Worker child processes started by `serve`.")
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 10.0
    max_attempts: int = 3
    poll_seconds: float = 0.25
    maintenance_seconds: float = 5.0

    # --- engine ---
    model: str = Field(default="auto", description="auto | tiny | local folder | hub repo id")
    device: str = "auto"
    dtype: str = "auto"
    num_inference_steps: int | None = Field(default=None, description="Default per model.")
    guidance_scale: float = 5.0
    flow_shift: float | None = Field(default=None, description="Default per model.")
    generation_area: int | None = Field(default=None, description="Pixels; default per model.")
    num_frames: int = Field(default=81, description="Generated frames (4n+1) at `fps`.")
    fps: int = 16
    output_fps: int = 30
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
    prompt_rewrite_timeout: float = 30.0

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

    media_connect_timeout: float = 10.0
    media_read_timeout: float = 30.0
    media_total_timeout: float = 120.0
    media_max_redirects: int = 5
    media_user_agent: str = "DashScopeUserBot"
    watermark_font: Path | None = Field(
        default=None, description="TTF/OTF with CJK glyphs for the 'AI生成' watermark."
    )

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
