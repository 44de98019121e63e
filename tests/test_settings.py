"""Settings that can never work are refused when the settings are built, by every entry point."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from vace_server import cli
from vace_server.cli import app
from vace_server.settings import (
    DEFAULT_LOG_LEVEL,
    GROUP_OF,
    GROUPS,
    SECRET_FIELDS,
    EngineSettings,
    Settings,
    describe_invalid,
    from_worker_payload,
    scrub_worker_environment,
    worker_payload,
)


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """The commands invoked here configure the root logger onto CliRunner's stream, which is
    closed afterwards: later tests' log lines must not go there."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("kwargs", "names", "fragment"),
    [
        ({"num_frames": 80}, "VACE_NUM_FRAMES", "4n+1"),
        ({"num_frames": 0}, "VACE_NUM_FRAMES", "greater than or equal to 1"),
        ({"num_inference_steps": 0}, "VACE_NUM_INFERENCE_STEPS", "greater than or equal"),
        ({"generation_area": 100}, "VACE_GENERATION_AREA", "256"),
        ({"fps": 0}, "VACE_FPS", "greater than or equal"),
        ({"output_x264_preset": "turbo"}, "VACE_OUTPUT_X264_PRESET", "superfast"),
        ({"output_crf": 52}, "VACE_OUTPUT_CRF", "less than or equal to 51"),
        ({"lease_seconds": 0}, "VACE_LEASE_SECONDS", "greater than 0"),
        ({"heartbeat_seconds": -1}, "VACE_HEARTBEAT_SECONDS", "greater than 0"),
        ({"poll_seconds": 0}, "VACE_POLL_SECONDS", "greater than 0"),
        ({"maintenance_seconds": -5}, "VACE_MAINTENANCE_SECONDS", "greater than 0"),
        ({"stop_grace_seconds": -1}, "VACE_STOP_GRACE_SECONDS", "greater than or equal"),
        ({"max_attempts": 0}, "VACE_MAX_ATTEMPTS", "greater than or equal to 1"),
        ({"prefetch": -1}, "VACE_PREFETCH", "greater than or equal to 0"),
        ({"prefetch": 9}, "VACE_PREFETCH", "less than or equal to 8"),
        ({"prefetch_memory_mb": -1}, "VACE_PREFETCH_MEMORY_MB", "greater than or equal to 0"),
        ({"workers": -1}, "VACE_WORKERS", "greater than or equal to 0"),
        ({"media_total_timeout": float("inf")}, "VACE_MEDIA_TOTAL_TIMEOUT", "finite"),
        ({"time_zone": "Mars/Olympus"}, "VACE_TIME_ZONE", "unknown time zone"),
        ({"heartbeat_seconds": 60, "lease_seconds": 30}, "VACE_HEARTBEAT_SECONDS", "shorter"),
    ],
)
def test_values_that_can_never_work_are_refused(
    kwargs: dict[str, object], names: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)  # type: ignore[arg-type]
    line = describe_invalid(info.value)
    assert "\n" not in line
    assert names in line and fragment in line


def test_a_model_folder_must_exist_and_be_a_diffusers_pipeline(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    assert "does not exist" in (Settings(model=str(missing)).model_folder_problem() or "")
    assert "model_index.json" in (Settings(model=str(tmp_path)).model_folder_problem() or "")
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanVACEPipeline"}))
    assert Settings(model=str(tmp_path)).model_folder_problem() is None
    # names and hub ids are the loader's to resolve
    for name in ("tiny", "auto", "Wan-AI/Wan2.1-VACE-1.3B-diffusers"):
        assert Settings(model=name).model_folder_problem() is None
    # a bare name that is none of those can only be a folder: say it is missing, not that it
    # "is neither 'auto', 'tiny' …"
    problem = Settings(model="vace-1.3b").model_folder_problem() or ""
    assert problem.startswith("VACE_MODEL='vace-1.3b': the model folder does not exist (looked in")


def test_a_missing_model_folder_stops_the_commands_that_load_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_MODEL", str(tmp_path / "gone"))
    monkeypatch.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    for command in (["serve"], ["worker"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2
        assert "the model folder does not exist" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data").exists()  # refused before anything was started


def test_valid_values_pass_and_travel_as_json() -> None:
    settings = Settings(num_frames=17, heartbeat_seconds=0.5, lease_seconds=4, fps=8)
    assert Settings.model_validate_json(settings.model_dump_json()) == settings


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["generate", "--out", "x.mp4"]])
def test_every_entry_point_stops_with_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VACE_NUM_FRAMES", "80")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "vace-server: invalid settings: VACE_NUM_FRAMES='80': must be 4n+1 (e.g. 81 or 17), not 80"
    ]


# --- grouping: every flat VACE_* name still sets its field ------------------------------------
# field -> (environment value, the value the field then holds); every field of every group.
SAMPLES: dict[str, tuple[str, object]] = {
    "host": ("0.0.0.0", "0.0.0.0"),
    "port": ("9001", 9001),
    "public_base_url": ("https://vace.example", "https://vace.example"),
    "time_zone": ("Asia/Shanghai", "Asia/Shanghai"),
    "region": ("eu-west", "eu-west"),
    "max_request_bytes": ("2048", 2048),
    "request_body_timeout_seconds": ("7.5", 7.5),
    "api_keys": ("sk-1=acct", "sk-1=acct"),
    "auth_disabled": ("true", True),
    "rate_limit_submit_per_second": ("2.5", 2.5),
    "rate_limit_in_flight": ("4", 4),
    "rate_limit_query_per_second": ("9", 9.0),
    "rate_limit_shared": ("false", False),
    "rate_limits": ('{"a": {"in_flight": 1}}', '{"a": {"in_flight": 1}}'),
    "data_dir": ("/srv/vace", Path("/srv/vace")),
    "database_url": ("postgresql://u:pw@db/vace", "postgresql://u:pw@db/vace"),
    "api_database_retry_seconds": ("3", 3.0),
    "database_retry_seconds": ("4", 4.0),
    "retention_hours": ("48", 48.0),
    "task_timeout_hours": ("1.5", 1.5),
    "storage_url": ("s3://bucket/prefix", "s3://bucket/prefix"),
    "url_signing_secret": ("sign-me", "sign-me"),
    "s3_endpoint_url": ("http://minio:9000", "http://minio:9000"),
    "s3_region": ("eu-central-1", "eu-central-1"),
    "s3_access_key_id": ("AKID", "AKID"),
    "s3_secret_access_key": ("s3-secret", "s3-secret"),
    "s3_addressing_style": ("path", "path"),
    "s3_presign_max_seconds": ("3600", 3600),
    "webhook_url": ("https://hooks.example/x", "https://hooks.example/x"),
    "webhook_secret": ("whsec_abc", "whsec_abc"),
    "webhook_timeout": ("3", 3.0),
    "workers": ("3", 3),
    "lease_seconds": ("120", 120.0),
    "heartbeat_seconds": ("5", 5.0),
    "max_attempts": ("5", 5),
    "poll_seconds": ("0.5", 0.5),
    "local_wakeups": ("false", False),
    "maintenance_seconds": ("9", 9.0),
    "stop_grace_seconds": ("30", 30.0),
    "restart_stable_seconds": ("90", 90.0),
    "prefetch": ("2", 2),
    "prefetch_memory_mb": ("512", 512),
    "model": ("tiny", "tiny"),
    "device": ("cuda:1", "cuda:1"),
    "dtype": ("bf16", "bf16"),
    "preset": ("balanced", "balanced"),
    "distill_lora": ("/loras/distill.safetensors", Path("/loras/distill.safetensors")),
    "loras": ("/loras/style.safetensors:0.5", "/loras/style.safetensors:0.5"),
    "distill_lora_2": ("/loras/low.safetensors", Path("/loras/low.safetensors")),
    "loras_2": ("", ""),  # set but empty: the low-noise expert takes no LoRAs (unset: loras)
    "prompt_cache_size": ("8", 8),
    "num_inference_steps": ("12", 12),
    "guidance_scale": ("3.5", 3.5),
    "flow_shift": ("7", 7.0),
    "generation_area": ("4096", 4096),
    "num_frames": ("17", 17),
    "fps": ("8", 8),
    "output_fps": ("24", 24),
    "output_x264_preset": ("veryfast", "veryfast"),
    "output_crf": ("23", 23),
    "negative_prompt": ("blurry", "blurry"),
    "model_cpu_offload": ("1", True),
    "vae_dtype": ("bf16", "bf16"),
    "attention_backend": ("SAGE", "sage"),
    "compile": ("1", True),
    "compile_mode": ("max-autotune-no-cudagraphs", "max-autotune-no-cudagraphs"),
    "compile_backend": ("eager", "eager"),
    "cache": ("taylorseer", "taylorseer"),
    "cache_interval": ("3", 3),
    "layerwise_casting": ("float8_e4m3fn", "float8_e4m3fn"),
    "offload": ("group", "group"),
    "group_offload_type": ("block_level", "block_level"),
    "text_encoder_device": ("CPU", "cpu"),
    "vae_tiling": ("true", True),
    "vae_slicing": ("1", True),
    "models": ('{"m": {"model": "tiny"}}', '{"m": {"model": "tiny"}}'),
    "served_model": ("m", "m"),
    "gpus_per_task": ("4", 4),
    "context_parallel": ("ring", "ring"),
    "annotator_dir": ("/models/annotators", Path("/models/annotators")),
    "segmentation_backend": ("classical", "classical"),
    "tracking_backend": ("model", "model"),
    "scribble_style": ("xdog", "xdog"),
    "edit_reference_role": ("bg", "bg"),
    "prompt_rewrite_url": ("http://llm:8001/v1", "http://llm:8001/v1"),
    "prompt_rewrite_model": ("qwen", "qwen"),
    "prompt_rewrite_api_key": ("llm-key", "llm-key"),
    "prompt_rewrite_timeout": ("12", 12.0),
    "media_allow_private_networks": ("yes", True),
    "media_allowed_networks": ("10.1.2.0/24", "10.1.2.0/24"),
    "media_connect_timeout": ("2", 2.0),
    "media_read_timeout": ("3", 3.0),
    "media_total_timeout": ("4", 4.0),
    "media_max_redirects": ("0", 0),
    "media_user_agent": ("ua/1", "ua/1"),
    "watermark_font": ("/fonts/cjk.ttf", Path("/fonts/cjk.ttf")),
    "log_level": ("debug", "DEBUG"),
    "log_format": ("TEXT", "text"),
}
# Checked in pairs: a key id without its secret is refused.
_PARTNERS = {
    "s3_access_key_id": "s3_secret_access_key",
    "s3_secret_access_key": "s3_access_key_id",
    "served_model": "models",  # a served model names an entry of the registry
}


def _held(settings: Settings, field: str) -> object:
    value = getattr(getattr(settings, GROUP_OF[field]), field)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_field_has_a_sample() -> None:
    assert set(SAMPLES) == set(GROUP_OF)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.upper().startswith("VACE_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("field", sorted(GROUP_OF))
def test_each_flat_environment_name_sets_its_grouped_field(
    field: str, clean_env: pytest.MonkeyPatch
) -> None:
    raw, expected = SAMPLES[field]
    clean_env.setenv(f"VACE_{field.upper()}", raw)
    if partner := _PARTNERS.get(field):
        clean_env.setenv(f"VACE_{partner.upper()}", SAMPLES[partner][0])
    settings = Settings()
    assert _held(settings, field) == expected
    assert _held(Settings(**{field: raw}), field) == expected  # flat keyword: the same


def test_groups_are_frozen_models_and_the_names_unique() -> None:
    settings = Settings()
    assert set(type(settings).model_fields) == set(GROUPS)
    assert len(GROUP_OF) == sum(len(model.model_fields) for model in GROUPS.values())
    with pytest.raises(ValidationError):
        settings.engine.num_frames = 17  # type: ignore[misc]
    assert isinstance(settings.engine, EngineSettings)


def test_nested_names_work_and_the_flat_name_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("VACE_ENGINE__NUM_FRAMES", "21")
    clean_env.setenv("VACE_ENGINE__FPS", "8")
    assert (Settings().engine.num_frames, Settings().engine.fps) == (21, 8)
    clean_env.setenv("VACE_NUM_FRAMES", "17")
    assert (Settings().engine.num_frames, Settings().engine.fps) == (17, 8)
    # keywords win over the environment, flat or grouped
    assert Settings(num_frames=5).engine.num_frames == 5
    assert Settings(engine={"num_frames": 9}).engine.num_frames == 9
    assert Settings(engine={"num_frames": 9}).engine.fps == 8  # the rest of the group stays


def test_a_misspelt_keyword_is_refused() -> None:
    with pytest.raises(ValidationError, match="num_frame"):
        Settings(num_frame=17)


def test_cli_flags_land_in_their_groups(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    settings = cli._settings(
        logs=False,
        host="0.0.0.0",
        port=9009,
        model="tiny",
        data_dir=tmp_path,
        database_url="sqlite:///x.db",
        device="cpu",
        workers=0,
        public_base_url="https://v.example",
    )
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9009)
    assert (settings.engine.model, settings.engine.device) == ("tiny", "cpu")
    assert settings.store.data_dir == tmp_path and settings.queue.workers == 0
    assert settings.resolved_database_url() == "sqlite:///x.db"
    assert settings.resolved_public_base_url() == "https://v.example"


def test_replace_and_model_construct_take_flat_names(tmp_path: Path) -> None:
    base = Settings(model="tiny")
    changed = base.replace(data_dir=tmp_path, num_frames=17)
    assert (changed.store.data_dir, changed.engine.num_frames) == (tmp_path, 17)
    assert changed.engine.model == "tiny" and base.engine.num_frames == 81
    with pytest.raises(ValidationError, match="4n"):
        base.replace(num_frames=16)
    unchecked = Settings.model_construct(num_frames=80)
    assert unchecked.engine.num_frames == 80 and unchecked.http.port == 8000


# --- validation at load ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"VACE_DTYPE": "int8"}, "VACE_DTYPE='int8': not one of auto, float32, bfloat16"),
        ({"VACE_DEVICE": "gpu0"}, "VACE_DEVICE='gpu0': not a torch device"),
        ({"VACE_LOG_LEVEL": "loud"}, "VACE_LOG_LEVEL='LOUD': Input should be"),
        ({"VACE_RATE_LIMITS": '{"a": {"rps": 1}}'}, "VACE_RATE_LIMITS="),
        ({"VACE_RATE_LIMITS": "{nope"}, "not JSON"),
        ({"VACE_RATE_LIMIT_SUBMIT_PER_SECOND": "0"}, "VACE_RATE_LIMIT_SUBMIT_PER_SECOND='0'"),
        ({"VACE_STORAGE_URL": "gs://bucket/x"}, "only s3:// URLs and folders"),
        ({"VACE_STORAGE_URL": "s3:///x"}, "names no bucket"),
        ({"VACE_PUBLIC_BASE_URL": "vace.example"}, "VACE_PUBLIC_BASE_URL='vace.example'"),
        ({"VACE_WEBHOOK_URL": "ftp://x"}, "http:// or https://"),
        ({"VACE_PROMPT_REWRITE_URL": "llm:8001"}, "http:// or https://"),
        ({"VACE_S3_ACCESS_KEY_ID": "only-the-id"}, "set both VACE_S3_ACCESS_KEY_ID"),
        ({"VACE_API_KEYS": "sk-1,=acct"}, "VACE_API_KEYS: an entry has no key"),
    ],
)
def test_serve_refuses_bad_settings_with_one_line(
    env: dict[str, str], line: str, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("VACE_DATA_DIR", str(tmp_path / "data"))
    for name, value in env.items():
        clean_env.setenv(name, value)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vace-server: invalid settings: ")
    assert line in lines[0]
    assert not (tmp_path / "data").exists()  # the API did not start either


# --- secrets ---------------------------------------------------------------------------------
SECRETS = {
    "api_keys": "sk-topsecret-key",
    "database_url": "postgresql://u:db-pass-123@db/vace",
    "url_signing_secret": "signing-secret-456",
    "s3_secret_access_key": "s3-secret-789",
    "webhook_secret": "whsec_webhook-secret",
    "prompt_rewrite_api_key": "llm-key-000",
}


def _secret_settings() -> Settings:
    return Settings(s3_access_key_id="AKID", **SECRETS)


def test_every_secret_is_a_secret_str() -> None:
    assert set(SECRETS) == SECRET_FIELDS
    settings = _secret_settings()
    for field, text in SECRETS.items():
        value = getattr(getattr(settings, GROUP_OF[field]), field)
        assert isinstance(value, SecretStr) and value.get_secret_value() == text


def test_secrets_do_not_show_in_repr_dumps_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = _secret_settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    shown = [repr(settings), str(settings), settings.model_dump_json(), caplog.text]
    for text in shown:
        for secret in SECRETS.values():
            assert secret not in text


def test_a_refused_secret_is_not_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(api_keys="=sk-topsecret-key")
    line = describe_invalid(info.value)
    assert "VACE_API_KEYS" in line and "topsecret" not in line


def test_the_worker_payload_holds_only_what_a_worker_uses() -> None:
    settings = _secret_settings().replace(num_frames=17, webhook_url="https://h.example")
    payload = worker_payload(settings)
    for gone in ("api_keys", "url_signing_secret", "webhook_secret"):
        assert SECRETS[gone] not in payload
    assert set(json.loads(payload)) == set(GROUPS) - {"accounts", "webhooks"}
    worker = from_worker_payload(payload)
    # what it needs arrives in clear: the database, the S3 key, the prompt rewriter's key
    assert worker.resolved_database_url() == SECRETS["database_url"]
    assert _held(worker, "s3_secret_access_key") == SECRETS["s3_secret_access_key"]
    assert _held(worker, "prompt_rewrite_api_key") == SECRETS["prompt_rewrite_api_key"]
    assert worker.storage.url_signing_secret is None and worker.webhooks.webhook_url is None
    assert _held(worker, "api_keys") == ""
    for group in set(GROUPS) - {"accounts", "webhooks", "storage"}:
        assert getattr(worker, group) == getattr(settings, group)


def test_the_payload_is_read_without_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    payload = worker_payload(Settings(num_frames=17))
    clean_env.setenv("VACE_NUM_FRAMES", "21")
    assert from_worker_payload(payload).engine.num_frames == 17


def test_a_worker_scrubs_the_api_secrets_from_its_inherited_environment() -> None:
    environ = {
        "VACE_API_KEYS": "k1",
        "vace_accounts__api_keys": "k2",
        "VACE_ACCOUNTS": '{"api_keys": "k3"}',
        "VACE_WEBHOOK_SECRET": "whsec",
        "VACE_RATE_LIMITS": "{}",
        "VACE_URL_SIGNING_SECRET": "sign",
        "VACE_STORAGE__URL_SIGNING_SECRET": "sign2",
        # what a worker uses stays, secrets included
        "VACE_DATABASE_URL": "postgresql://u:p@db/x",
        "VACE_S3_SECRET_ACCESS_KEY": "s3",
        "VACE_NUM_FRAMES": "17",
        "PATH": "/usr/bin",
    }
    removed = scrub_worker_environment(environ)
    assert sorted(removed) == sorted(
        [
            "VACE_API_KEYS",
            "vace_accounts__api_keys",
            "VACE_ACCOUNTS",
            "VACE_WEBHOOK_SECRET",
            "VACE_RATE_LIMITS",
            "VACE_URL_SIGNING_SECRET",
            "VACE_STORAGE__URL_SIGNING_SECRET",
        ]
    )
    assert environ == {
        "VACE_DATABASE_URL": "postgresql://u:p@db/x",
        "VACE_S3_SECRET_ACCESS_KEY": "s3",
        "VACE_NUM_FRAMES": "17",
        "PATH": "/usr/bin",
    }
    assert scrub_worker_environment(environ) == []


# --- one VACE_LOG_LEVEL ----------------------------------------------------------------------
def test_log_level_has_one_definition(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().logging.log_level == DEFAULT_LOG_LEVEL == "INFO"
    assert "log_level" not in Settings().logging.model_fields_set
    clean_env.setenv("VACE_LOG_LEVEL", "warning")
    assert Settings().logging.log_level == "WARNING"
    assert "log_level" in Settings().logging.model_fields_set  # `generate` asks this
