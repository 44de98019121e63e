from __future__ import annotations

import base64

from tests.support.clock import FakeClock
from tests.tasks.test_store import SPEC
from vace_server.tasks.store import TaskStore
from vace_server.webhooks import signing
from vace_server.webhooks.outbox import BACKOFF_SECONDS, MAX_ATTEMPTS, Outbox


def _ended_task_with_hook(store: TaskStore, *urls: str) -> str:
    task = store.create(SPEC, account="a", api_key_id="k", request_id="r", callback_urls=urls)
    claim = store.claim("w")
    assert claim is not None
    store.fail(claim, code="InvalidURL", message="m")
    return task.id


def test_only_ended_tasks_are_due_and_each_delivery_is_taken_once(
    store: TaskStore, clock: FakeClock
) -> None:
    outbox = Outbox(store.engine, clock=clock)
    running = store.create(
        SPEC, account="a", api_key_id="k", request_id="r", callback_urls=["http://h/x"]
    )
    assert store.claim("w0") is not None  # RUNNING (so the helper below claims its own task)
    assert outbox.take_due() == []
    task_id = _ended_task_with_hook(store, "http://h/1", "http://h/2", "http://h/1")
    taken = outbox.take_due()
    assert sorted(d.url for d in taken) == ["http://h/1", "http://h/2"]
    assert all(d.task.id == task_id and d.attempt == 1 for d in taken)
    assert outbox.take_due() == []  # taken: not handed out again while being sent
    assert running.id not in {d.task.id for d in taken}


def test_backoff_then_failed_for_good(store: TaskStore, clock: FakeClock) -> None:
    outbox = Outbox(store.engine, clock=clock)
    _ended_task_with_hook(store, "http://h/1")
    for attempt in range(1, MAX_ATTEMPTS + 1):
        (delivery,) = outbox.take_due()
        assert delivery.attempt == attempt
        outbox.failed(delivery, "HTTP 500")
        if attempt < MAX_ATTEMPTS:
            assert outbox.take_due() == []
            clock.advance(BACKOFF_SECONDS[attempt - 1] * 1000)
    (state,) = outbox.states(delivery.task.id)
    assert state["state"] == "failed" and state["attempts"] == MAX_ATTEMPTS
    clock.advance(10**9)
    assert outbox.take_due() == []


def test_delivered_is_final(store: TaskStore, clock: FakeClock) -> None:
    outbox = Outbox(store.engine, clock=clock)
    _ended_task_with_hook(store, "http://h/1")
    (delivery,) = outbox.take_due()
    outbox.delivered(delivery)
    clock.advance(10**9)
    assert outbox.take_due() == []
    assert outbox.states(delivery.task.id)[0]["state"] == "delivered"


def test_signature_follows_standard_webhooks() -> None:
    # The known-answer vector of the Standard Webhooks specification's reference libraries
    # (also checked with `openssl dgst -sha256 -mac HMAC`): literal inputs, literal answer,
    # so a formula wrong in the code and in the test alike cannot pass.
    key = signing.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert key == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    headers = signing.headers(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["Content-Type"] == "application/json"
    # a secret without the prefix is its own UTF-8 bytes
    assert signing.secret_key("plain") == b"plain"


def test_purge_removes_deliveries_with_their_task(store: TaskStore, clock: FakeClock) -> None:
    outbox = Outbox(store.engine, clock=clock)
    task_id = _ended_task_with_hook(store, "http://h/1")
    clock.advance(store.retention_ms)
    store.purge_expired()
    assert outbox.states(task_id) == []
