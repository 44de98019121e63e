"""The launcher parts that need no model: --gpus parsing, the schema check, actor naming."""

from __future__ import annotations

from pathlib import Path

import pytest

from vace_server.tasks import db
from vace_server.worker.ray_actors import _actor_index, incarnation_id
from vace_server.worker.runtime import WorkerStartupError, check_schema
from vace_server.worker.standalone import parse_gpus


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, []), ("", []), ("0", ["0"]), ("0,1", ["0", "1"]), (" 2, 3 ", ["2", "3"]),
     ("GPU-5f3c,GPU-77aa", ["GPU-5f3c", "GPU-77aa"])],
)  # fmt: skip
def test_parse_gpus(text: str | None, expected: list[str]) -> None:
    assert parse_gpus(text) == expected


@pytest.mark.parametrize("text", ["0,,1", "0,0", ",", "0 1"])
def test_parse_gpus_refuses_malformed_lists(text: str) -> None:
    with pytest.raises(ValueError, match="--gpus"):
        parse_gpus(text)


def test_check_schema_missing_outdated_and_current(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    with pytest.raises(WorkerStartupError, match=r"no vace-server schema.*db upgrade"):
        check_schema(engine)
    db.upgrade(engine, "0001")
    with pytest.raises(WorkerStartupError, match="schema is at revision 0001"):
        check_schema(engine)
    db.upgrade(engine)
    check_schema(engine)  # at head: no error
    engine.dispose()


def test_check_schema_reports_an_unreachable_database(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    (tmp_path / "v.db").mkdir()  # a folder where the database file should be
    with pytest.raises(WorkerStartupError, match="cannot reach the database"):
        check_schema(engine)
    engine.dispose()


def test_each_actor_incarnation_has_its_own_worker_id() -> None:
    first, second = incarnation_id("vace-worker-0"), incarnation_id("vace-worker-0")
    assert first != second
    assert ":ray:vace-worker-0:" in first
    assert len(first) <= 96  # the tasks.worker_id column


def test_actor_names_are_matched_by_prefix_and_index() -> None:
    assert _actor_index("vace-worker-3", "vace-worker") == 3
    assert _actor_index("vace-worker-x", "vace-worker") is None
    assert _actor_index("vace-worker-3-old", "vace-worker") is None
    assert _actor_index("other-3", "vace-worker") is None
