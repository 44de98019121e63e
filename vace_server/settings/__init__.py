"""One settings tree, read once from `VACE_*` environment variables (and, for a few commands,
CLI flags: see cli.py), validated at load, then injected.

Fields live in frozen groups (settings/groups.py): `settings.engine.num_frames`,
`settings.store.database_url` … Each field's environment variable stays flat, `VACE_<FIELD>`
(`VACE_NUM_FRAMES`), as before the grouping; `VACE_<GROUP>__<FIELD>` (`VACE_ENGINE__NUM_FRAMES`)
works too, the flat name winning.
`Settings(num_frames=17)` (flat keyword arguments) is routed into the groups the same way."""

from __future__ import annotations

import json
import os
import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from vace_server.settings.groups import (
    DEFAULT_LOG_LEVEL,
    DEFAULT_NEGATIVE_PROMPT,
    GROUP_OF,
    GROUPS,
    SECRET_FIELDS,
    AccountSettings,
    AnnotatorSettings,
    EngineSettings,
    HttpSettings,
    LoggingSettings,
    MediaSettings,
    PromptRewriteSettings,
    QueueSettings,
    StorageSettings,
    StoreSettings,
    WebhookSettings,
    parse_loras,
    parse_networks,
    storage_url_problem,
)

__all__ = [
    "DEFAULT_LOG_LEVEL",
    "DEFAULT_NEGATIVE_PROMPT",
    "GROUPS",
    "GROUP_OF",
    "SECRET_FIELDS",
    "AccountSettings",
    "AnnotatorSettings",
    "EngineSettings",
    "HttpSettings",
    "LoggingSettings",
    "MediaSettings",
    "PromptRewriteSettings",
    "QueueSettings",
    "Settings",
    "StorageSettings",
    "StoreSettings",
    "WebhookSettings",
    "describe_invalid",
    "from_worker_payload",
    "parse_loras",
    "parse_networks",
    "reveal",
    "route_flat",
    "scrub_worker_environment",
    "storage_url_problem",
    "worker_payload",
]

_PATH_LIKE = re.compile(r"^(/|~|\.{1,2}(/|$))")
# The model names the engine's loader knows (engine/loader.py), besides folders and hub ids.
_MODEL_NAMES = ("auto", "tiny", "tiny-a14b")
# The loader's hub id form (engine/loader.py): owner/name.
_HUB_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def reveal(secret: SecretStr | None) -> str | None:
    """The secret's text, at the one call that hands it on (None stays None)."""
    return None if secret is None else secret.get_secret_value()


def route_flat(values: dict[str, Any]) -> dict[str, Any]:
    """`{"num_frames": 17, "engine": {...}}` -> `{"engine": {..., "num_frames": 17}}`: flat
    names join their group (and win over the same name given inside it); others pass."""
    routed: dict[str, Any] = {}
    for key, value in values.items():
        if key in GROUPS and isinstance(value, BaseModel):
            value = dict(value)  # a group model given whole: its fields, secrets still wrapped
        if key in GROUP_OF:
            group = GROUP_OF[key]
            routed[group] = {**_as_dict(routed.get(group, values.get(group))), key: value}
        elif key not in routed:
            routed[key] = value
    return routed


def _as_dict(group: object) -> dict[str, Any]:
    if isinstance(group, BaseModel):
        return dict(group)
    return dict(group) if isinstance(group, dict) else {}


class _FlatEnvSource(PydanticBaseSettingsSource):
    """`VACE_<FIELD>` for every field of every group (`VACE_NUM_FRAMES` -> engine.num_frames),
    matched case-insensitively like pydantic-settings' own environment source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        env = {key.lower(): value for key, value in os.environ.items()}
        found: dict[str, dict[str, str]] = {}
        for field, group in GROUP_OF.items():
            value = env.get(f"vace_{field}")
            if value is not None:
                found.setdefault(group, {})[field] = value
        return found


class Settings(BaseSettings):
    """Every knob of the server, in groups; each field `foo` is read from env `VACE_FOO`. A few
    (host, port, model, data_dir, database_url, device, workers, public_base_url) are also CLI
    flags of the commands that use them (`vace-server serve --port …`, see cli.py)."""

    model_config = SettingsConfigDict(
        env_prefix="VACE_",
        env_nested_delimiter="__",
        extra="forbid",  # after route_flat: a misspelt keyword argument is an error
        frozen=True,
    )

    http: HttpSettings = HttpSettings()
    accounts: AccountSettings = AccountSettings()
    store: StoreSettings = StoreSettings()
    storage: StorageSettings = StorageSettings()
    webhooks: WebhookSettings = WebhookSettings()
    queue: QueueSettings = QueueSettings()
    engine: EngineSettings = EngineSettings()
    annotators: AnnotatorSettings = AnnotatorSettings()
    prompt_rewrite: PromptRewriteSettings = PromptRewriteSettings()
    media: MediaSettings = MediaSettings()
    logging: LoggingSettings = LoggingSettings()

    def __init__(self, **values: Any) -> None:
        """Keyword arguments may be flat (`num_frames=17`) or groups (`engine={...}`); they
        win over the environment."""
        super().__init__(**route_flat(values))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: keywords, then flat VACE_FOO, then nested VACE_GROUP__FOO.
        flat = _FlatEnvSource(settings_cls)
        return init_settings, flat, env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, values: Any) -> Any:
        return route_flat(values) if isinstance(values, dict) else values

    @classmethod
    def model_construct(cls, _fields_set: set[str] | None = None, **values: Any) -> Settings:
        """Unvalidated, as pydantic's, but flat names still land in their groups (tests build
        settings that can never work this way, to reach the loader's own checks)."""
        routed = route_flat(values)
        groups = {
            name: model.model_construct(**_as_dict(routed.pop(name, None)))
            for name, model in GROUPS.items()
        }
        return super().model_construct(_fields_set, **groups, **routed)

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with `changes` (flat or grouped names) applied."""
        current = {name: dict(getattr(self, name)) for name in GROUPS}
        return type(self).model_validate({**current, **changes})

    def for_served_model(self) -> Settings:
        """The settings this worker runs with: its served model's (VACE_SERVED_MODEL's entry
        of VACE_MODELS) weights, preset and engine settings over the deployment's; the same
        settings without a registry. Raises: ValueError (several models, none chosen)."""
        entry = self.engine.served_entry()
        if entry is None:
            return self
        engine = {**dict(self.engine), **entry.engine_changes(), "served_model": entry.name}
        return self.replace(engine=engine)

    def claim_names(self) -> tuple[str, ...] | None:
        """The model names whose tasks this worker claims: its served model's names and
        aliases, or None (every task) without a registry. Raises: as `for_served_model`."""
        entry = self.engine.served_entry()
        return None if entry is None else entry.names

    def model_folder_problem(self) -> str | None:
        """Why `model`, written as a path (/…, ./…, ../…, ~…), cannot be a diffusers folder
        here, or None; with VACE_MODELS, the same for each served model's weights. Checked by
        the entry points that load the model on this machine (not a field check: API replicas
        and Ray drivers share the workers' settings without their folders). Names (auto,
        tiny), hub ids and relative folders are the loader's."""
        problem = _folder_problem("VACE_MODEL", self.engine.model)
        for entry in self.engine.served_models:
            if problem is None and entry.weights is not None:
                problem = _folder_problem(f"VACE_MODELS: {entry.name}: model", entry.weights)
        return problem

    def resolved_database_url(self) -> str:
        if self.store.database_url:
            return self.store.database_url.get_secret_value()
        return f"sqlite:///{(self.store.data_dir / 'vace.db').resolve()}"

    def resolved_public_base_url(self) -> str:
        if self.http.public_base_url:
            return self.http.public_base_url.rstrip("/")
        return f"http://{self.http.host}:{self.http.port}"

    @property
    def retention_ms(self) -> int:
        return int(self.store.retention_hours * 3_600_000)

    @property
    def worker_alive_ms(self) -> int:
        """A worker that has not beaten into the registry for this long counts as gone."""
        return int((3 * self.queue.heartbeat_seconds + 5) * 1000)


def _folder_problem(setting: str, value: str) -> str | None:
    text = value.strip()
    if not _PATH_LIKE.match(text):
        # Neither a name nor a hub id (owner/name): only a folder it can be, and not here.
        if text in _MODEL_NAMES or _HUB_LIKE.match(text) or Path(text).is_dir():
            return None
        return (
            f"{setting}={text!r}: the model folder does not exist (looked in {Path.cwd()}); "
            "give a diffusers folder, a Hugging Face repo id (owner/name), 'auto', 'tiny' or "
            "'tiny-a14b'"
        )
    folder = Path(text).expanduser()
    if not folder.is_dir():
        return f"{setting}={text!r}: the model folder does not exist (or is not a folder)"
    if not (folder / "model_index.json").is_file():
        return f"{setting}={text!r}: no model_index.json in it, so not a diffusers pipeline"
    return None


# What a worker process (spawned child, `--gpus` child, Ray actor) does not need: it serves no
# requests (accounts), sends no webhooks and signs no URLs (the API does both).
_NOT_FOR_WORKERS = ("accounts", "webhooks")
_NOT_FOR_WORKERS_FIELDS = {"storage": ("url_signing_secret",)}


def worker_payload(settings: Settings) -> str:
    """The settings a worker needs, as JSON for a child process or a Ray actor: secrets it
    uses (database URL, S3 key, prompt-rewrite key) in clear, those it doesn't left out."""
    payload: dict[str, dict[str, Any]] = {}
    for name in GROUPS:
        if name in _NOT_FOR_WORKERS:
            continue
        group = getattr(settings, name)
        dropped = _NOT_FOR_WORKERS_FIELDS.get(name, ())
        values = group.model_dump(mode="json", exclude=set(dropped))
        for field in values.keys() & SECRET_FIELDS:
            secret = getattr(group, field)
            values[field] = None if secret is None else secret.get_secret_value()
        payload[name] = values
    return json.dumps(payload)


def _not_for_workers() -> set[tuple[str, str]]:
    """(group, field) of every setting a worker is not given."""
    left_out = {
        (group, field) for group in _NOT_FOR_WORKERS for field in GROUPS[group].model_fields
    }
    left_out |= {(group, f) for group, fields in _NOT_FOR_WORKERS_FIELDS.items() for f in fields}
    return left_out


def scrub_worker_environment(environ: MutableMapping[str, str]) -> list[str]:
    """Removes from `environ` the variables of the settings a worker is not given
    (`VACE_API_KEYS`, `VACE_WEBHOOK_SECRET`, `VACE_URL_SIGNING_SECRET`, … in their flat and
    nested spellings, any case): a worker process inherits its parent's environment, and this
    keeps those secrets from its code and from any process it starts.

    Returns: the names removed. Side effects: mutates `environ`."""
    names = set()
    for group, field in _not_for_workers():
        names |= {f"vace_{field}", f"vace_{group}__{field}"}
    names |= {f"vace_{group}" for group in _NOT_FOR_WORKERS}  # a whole group as JSON
    removed = [key for key in environ if key.lower() in names]
    for key in removed:
        del environ[key]
    return removed


def from_worker_payload(payload: str) -> Settings:
    """The worker's side of `worker_payload` (the environment is not read again)."""
    return Settings.model_validate_json(payload)


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each refused setting by its environment variable, e.g.
    `VACE_NUM_FRAMES=80: must be 4n+1 (e.g. 81 or 17), not 80`. Secrets are not echoed."""
    parts = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] in GROUPS:
            loc = loc[1:]  # flat names are the contract: VACE_NUM_FRAMES, not VACE_ENGINE__…
        if not loc:
            parts.append(message)  # a check across fields says which in its message
        elif loc[0] in SECRET_FIELDS:
            parts.append(f"VACE_{'__'.join(loc).upper()}: {message}")
        else:
            parts.append(f"VACE_{'__'.join(loc).upper()}={error.get('input')!r}: {message}")
    return "; ".join(parts)
