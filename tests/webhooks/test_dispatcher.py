"""The webhook dispatcher on its own: the real task store (SQLite and PostgreSQL) on a fake
clock, the real `UrlFetcher`, and a loopback receiver whose answers each test sets. Delivery,
signature, retry after the back-off, failures of every kind recorded (never raised), a hung
receiver holding only its own sender, and the loop riding out a database outage."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.exc import OperationalError

from tests.support.clock import FakeClock
from tests.support.waiting import wait_until
from tests.tasks.test_store import SPEC
from vace_server.media.fetch import UrlFetcher
from vace_server.settings import Settings
from vace_server.tasks.models import TaskRecord
from vace_server.tasks.store import TaskStore
from vace_server.webhooks.dispatcher import Dispatcher
from vace_server.webhooks.outbox import BACKOFF_SECONDS, Delivery, Outbox

KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


@dataclass
class Call:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Receiver:
    """Loopback receiver. `statuses[path]` is the list of answers, one per call (the last one
    repeats; 200 when unset); requests to a path in `hold` wait until `release` is set."""

    statuses: dict[str, list[int]] = field(default_factory=dict)
    hold: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            self.calls.append(Call(path, headers, body))
            seen = sum(c.path == path for c in self.calls)
        if path in self.hold:
            self.release.wait(60)
        answers = self.statuses.get(path, [200])
        return answers[min(seen, len(answers)) - 1]

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = state.answer(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = int(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    state.release.set()  # no handler thread outlives the test
    httpd.shutdown()
    httpd.server_close()


def _render(task: TaskRecord, request_id: str) -> dict[str, object]:
    return {"request_id": request_id, "output": {"task_id": task.id, "task_status": "FAILED"}}


def _dispatcher(
    outbox: Outbox, *, senders: int = 4, fetcher: UrlFetcher | None = None
) -> Dispatcher:
    fetcher = fetcher or UrlFetcher(Settings(media_allow_private_networks=True))
    return Dispatcher(
        outbox, fetcher, _render, secret=SECRET, timeout=10.0, senders=senders, interval=0.01
    )


def _ended_task(store: TaskStore, *urls: str) -> str:
    """A task that has ended (FAILED), with a webhook per URL."""
    task = store.create(SPEC, account="a", api_key_id="k", request_id="r", callback_urls=urls)
    claim = store.claim("w")
    assert claim is not None and claim.task.id == task.id
    store.fail(claim, code="InvalidURL", message="m")
    return task.id


def _after_attempts(outbox: Outbox, task_id: str, attempts: int) -> dict[str, object]:
    """The task's (only) delivery once `attempts` attempts have been recorded."""

    def recorded() -> dict[str, object] | None:
        (state,) = outbox.states(task_id)
        return state if state["attempts"] == attempts else None

    return wait_until(recorded, 30, what=f"attempt {attempts} of {task_id}'s webhook recorded")


def _verified(call: Call) -> dict[str, object]:
    """Checks the Standard Webhooks signature of a received call, written out here rather than
    through the code under test; returns the JSON body."""
    msg_id, timestamp = call.headers["webhook-id"], call.headers["webhook-timestamp"]
    signed = f"{msg_id}.{timestamp}.".encode() + call.body
    digest = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert call.headers["webhook-signature"] == f"v1,{digest}"
    assert call.headers["content-type"] == "application/json"
    body: dict[str, object] = json.loads(call.body)
    return body


def test_a_delivery_is_signed_sent_once_and_recorded(
    store: TaskStore, clock: FakeClock, receiver: Receiver
) -> None:
    outbox = Outbox(store.engine, clock=clock)
    task_id = _ended_task(store, receiver.url("/ok"))
    dispatcher = _dispatcher(outbox)
    assert dispatcher.run_once() == 1
    state = _after_attempts(outbox, task_id, 1)
    assert (state["state"], state["last_error"]) == ("delivered", None)
    assert state["delivered_ms"] == clock.ms
    (call,) = receiver.calls_to("/ok")
    assert call.headers["webhook-id"] == f"msg_{state['id']}"
    body = _verified(call)
    assert body["output"] == {"task_id": task_id, "task_status": "FAILED"}
    assert uuid.UUID(str(body["request_id"]))  # a fresh request id per message
    clock.advance(10**9)
    assert dispatcher.run_once() == 0  # delivered is final
    assert len(receiver.calls) == 1


def test_a_failed_attempt_is_retried_after_the_backoff_with_the_same_message_id(
    store: TaskStore, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.statuses["/flaky"] = [500, 503, 200]
    outbox = Outbox(store.engine, clock=clock)
    task_id = _ended_task(store, receiver.url("/flaky"))
    dispatcher = _dispatcher(outbox)
    for attempt, status in enumerate([500, 503], start=1):
        assert dispatcher.run_once() == 1
        state = _after_attempts(outbox, task_id, attempt)
        assert (state["state"], state["last_error"]) == ("pending", f"HTTP {status}")
        wait_ms = BACKOFF_SECONDS[attempt - 1] * 1000
        assert state["next_attempt_ms"] == clock.ms + wait_ms
        clock.advance(wait_ms - 1)
        assert dispatcher.run_once() == 0  # not due before the back-off is over
        clock.advance(1)
    assert dispatcher.run_once() == 1
    assert _after_attempts(outbox, task_id, 3)["state"] == "delivered"
    calls = receiver.calls_to("/flaky")
    assert len(calls) == 3
    assert len({c.headers["webhook-id"] for c in calls}) == 1  # receivers can deduplicate
    assert [_verified(c)["output"] for c in calls] == [_verified(calls[0])["output"]] * 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Exploding(UrlFetcher):
    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/redirect", "HTTP 302"),  # a redirect is not followed: not a delivery
        ("/missing", "HTTP 404"),
        ("refused", "InvalidURL"),  # nobody listening
        ("exploding", "RuntimeError('boom')"),  # anything else: recorded, never raised
    ],
)
def test_every_kind_of_failure_is_recorded_not_raised(
    store: TaskStore, clock: FakeClock, receiver: Receiver, path: str, error: str
) -> None:
    receiver.statuses.update({"/redirect": [302], "/missing": [404]})
    url = f"http://127.0.0.1:{_closed_port()}/hook" if path == "refused" else receiver.url(path)
    fetcher = _Exploding(Settings()) if path == "exploding" else None
    outbox = Outbox(store.engine, clock=clock)
    task_id = _ended_task(store, url)
    (delivery,) = outbox.take_due()
    _dispatcher(outbox, fetcher=fetcher).send(delivery)  # records the outcome itself
    (state,) = outbox.states(task_id)
    assert (state["state"], state["attempts"]) == ("pending", 1)
    assert str(state["last_error"]).startswith(error), state
    assert state["next_attempt_ms"] == clock.ms + BACKOFF_SECONDS[0] * 1000


def test_a_hung_receiver_holds_only_its_own_sender(
    store: TaskStore, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.hold.add("/hang")
    outbox = Outbox(store.engine, clock=clock)
    hung = _ended_task(store, receiver.url("/hang"))
    dispatcher = _dispatcher(outbox, senders=1)
    assert dispatcher.run_once() == 1  # returns at once: the send runs on the pool
    wait_until(lambda: receiver.calls_to("/hang"), what="the hung call to arrive")
    later = _ended_task(store, receiver.url("/ok"))
    assert dispatcher.run_once() == 0  # the only sender is busy: nothing more is taken
    assert outbox.states(hung)[0]["attempts"] == 0 and not receiver.release.is_set()
    receiver.release.set()
    assert _after_attempts(outbox, hung, 1)["state"] == "delivered"
    wait_until(lambda: dispatcher.run_once() == 1, what="the sender to be free again")
    assert _after_attempts(outbox, later, 1)["state"] == "delivered"


class _FlakyOutbox(Outbox):
    """The real outbox, whose `take_due` meets a database outage while `down` is set."""

    def __init__(self, store: TaskStore, clock: FakeClock) -> None:
        super().__init__(store.engine, clock=clock)
        self.down = threading.Event()
        self.failures = 0

    def take_due(self, limit: int = 16) -> list[Delivery]:
        if self.down.is_set():
            self.failures += 1
            raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))
        return super().take_due(limit)


def test_the_loop_rides_out_a_database_outage_and_logs_it_once(
    store: TaskStore, clock: FakeClock, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = _FlakyOutbox(store, clock)
    outbox.down.set()
    task_id = _ended_task(store, receiver.url("/ok"))
    dispatcher = _dispatcher(outbox)
    with caplog.at_level(logging.INFO, logger="vace_server.webhooks.dispatcher"):
        dispatcher.start()
        try:
            wait_until(lambda: outbox.failures >= 3, what="three passes during the outage")
            assert receiver.calls == []
            outbox.down.clear()
            assert _after_attempts(outbox, task_id, 1)["state"] == "delivered"
        finally:
            dispatcher.stop()
    messages = [r.getMessage() for r in caplog.records]
    unavailable = [m for m in messages if "database unavailable" in m]
    assert len(unavailable) == 1, messages  # one line for the whole outage, not one a pass
    assert "webhook dispatch pass: database back" in messages
    assert not any(r.levelno >= logging.ERROR for r in caplog.records), messages
    assert len(receiver.calls_to("/ok")) == 1


def test_stop_ends_the_loop(store: TaskStore, clock: FakeClock) -> None:
    dispatcher = _dispatcher(Outbox(store.engine, clock=clock))
    dispatcher.start()
    dispatcher.stop()
    assert not dispatcher._thread.is_alive()
