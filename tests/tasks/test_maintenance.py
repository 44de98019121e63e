from __future__ import annotations

from pathlib import Path

from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.storage.local import LocalStorage
from vace_server.tasks.maintenance import Maintenance
from vace_server.tasks.status import TaskStatus
from vace_server.tasks.store import TaskStore


def _maintenance(store: TaskStore, storage: LocalStorage) -> Maintenance:
    return Maintenance(store, storage, interval=60, task_timeout_ms=3 * 3_600_000)


def test_purges_expired_tasks_and_their_videos(
    store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "out", public_base_url="http://x", secret=b"s")
    source = tmp_path / "v.mp4"
    source.write_bytes(b"video")
    task = store.create(SPEC, account="a", api_key_id="k", request_id="r")
    claim = store.claim("w")
    assert claim is not None
    storage.put_file("2026-01-01/v.mp4", source)
    store.succeed(
        claim, output_key="2026-01-01/v.mp4", output_seconds=5, actual_prompt=None, effective={}
    )
    maintenance = _maintenance(store, storage)
    maintenance.run_once()
    assert storage.exists("2026-01-01/v.mp4")
    clock.advance(store.retention_ms)
    maintenance.run_once()
    assert not storage.exists("2026-01-01/v.mp4")
    assert store.get(task.id) is None


def test_requeues_expired_leases_and_times_out_old_tasks(
    store: TaskStore, clock: FakeClock, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "out", public_base_url="http://x", secret=b"s")
    stuck = store.create(SPEC, account="a", api_key_id="k", request_id="r")
    assert store.claim("vanished-worker") is not None
    clock.advance(store.lease_ms + 1)
    maintenance = _maintenance(store, storage)
    maintenance.run_once()
    task = store.get(stuck.id)
    assert task is not None and task.status is TaskStatus.PENDING
    clock.advance(3 * 3_600_000)
    maintenance.run_once()
    task = store.get(stuck.id)
    assert task is not None and task.status is TaskStatus.FAILED
    assert task.error_code == "InternalError.Timeout"
