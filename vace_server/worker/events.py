"""What a worker child tells its parent: a closed vocabulary of small frozen events.

The embedded children of `serve` put them on a multiprocessing queue (so they must pickle:
plain module-level dataclasses of plain values); the Ray actors answer `ready()` with a
`Ready` rendered as a dict. A child's death is not an event: the parent sees it in the
process's exit code (a child that dies hard sends nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Ready:
    """The child has loaded its model and runs its loop."""

    worker_id: str
    model: str | None
    model_warning: str | None
    device: str | None
    annotators: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """The shape `/health` and `vace-server ray-workers --list` have always shown."""
        return {"worker_id": self.worker_id, "event": "ready", **_fields_but_id(self)}


@dataclass(frozen=True)
class Failed:
    """The child could not start (typically its model could not be loaded); it exits next."""

    worker_id: str
    error: str


ChildEvent = Ready | Failed


class EventSink(Protocol):
    """Where a child puts its events (a multiprocessing queue in practice)."""

    def put(self, event: ChildEvent, /) -> None: ...


def _fields_but_id(event: Ready) -> dict[str, Any]:
    fields = asdict(event)
    fields.pop("worker_id")
    return fields
