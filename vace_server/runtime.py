"""Builds the shared parts (task store, output storage) from settings, for API and workers alike."""

from __future__ import annotations

from vace_server.settings import Settings, reveal
from vace_server.storage.base import S3Location, Storage, parse_storage_url
from vace_server.storage.local import LocalStorage, load_or_create_secret
from vace_server.tasks import db
from vace_server.tasks.store import TaskStore


def open_store(
    settings: Settings, *, migrate: bool = False, retry_seconds: float | None = None
) -> TaskStore:
    """A TaskStore on the configured database; `retry_seconds`: how long its calls ride out a
    lost database (default: the store's). Side effects: with `migrate`, schema upgrade."""
    engine = db.make_engine(settings.resolved_database_url())
    if migrate:
        db.upgrade(engine)
    return TaskStore(
        engine,
        lease_ms=int(settings.queue.lease_seconds * 1000),
        max_attempts=settings.queue.max_attempts,
        retention_ms=settings.retention_ms,
        local_wakeups=settings.queue.local_wakeups,
        retry_seconds=settings.store.database_retry_seconds
        if retry_seconds is None
        else retry_seconds,
    )


def open_storage(settings: Settings, *, signs: bool = True) -> Storage:
    """The output storage named by `storage_url`: a folder (default data_dir/outputs), or
    `s3://bucket/prefix` (objects under `prefix/outputs/`). `signs=False` (workers): a folder
    store without the URL-signing secret, which workers are not given (`worker_payload`).

    Raises: ValueError (unsupported storage_url). Side effects: local: creates the folder and,
    once, the signing secret; S3: builds a boto3 client (no request is made)."""
    where = parse_storage_url(settings.storage.storage_url, settings.store.data_dir)
    if isinstance(where, S3Location):
        from vace_server.storage.s3 import S3Storage

        return S3Storage.from_settings(settings, where.under("outputs"))
    configured = reveal(settings.storage.url_signing_secret)
    secret = load_or_create_secret(settings.store.data_dir, configured) if signs else None
    return LocalStorage(where, public_base_url=settings.resolved_public_base_url(), secret=secret)
