"""`TaskStore.create` answers with the record it inserted, without reading it back: that
record is exactly what the database then holds, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.tasks.test_store import SPEC
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore


def test_the_returned_record_is_the_stored_row(store: TaskStore) -> None:
    created = store.create(
        SPEC,
        account="acct",
        api_key_id="key-1",
        request_id="req-1",
        callback_urls=["http://127.0.0.1:9/hook"],
    )
    assert created.status is TaskStatus.PENDING
    assert store.get(created.id) == created
