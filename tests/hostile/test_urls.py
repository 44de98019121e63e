"""Hostile media URLs at the API (create body), against a live `serve` with the address guard
on: each ends as a synchronous DashScope-shaped 4xx or a FAILED task with an InvalidURL code,
never as a connection to a loopback server, and the server stays healthy.

`{p}` / `{p6}` are the ports of the loopback targets on 127.0.0.1 / ::1 (that must never see a
connection); `{t}` is the trusted 127.0.0.2 host (it stands in for a public one and serves only
/subject.png, so a URL that ends up there fails with a 404). No case needs a DNS query.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

from tests.support.guard import Targets, guarded_server, loopback_targets, reference_task
from tests.support.live_server import LiveServer
from vace_server.settings import Settings
from vace_server.webhooks.outbox import Outbox

# A live `serve` for the module, and many cases against it: minutes, not seconds.
pytestmark = pytest.mark.slow

CREATE = "/services/aigc/video-generation/video-synthesis"

SCHEMES = [
    "file:///etc/passwd",
    "file://127.0.0.1/etc/passwd",
    "ftp://127.0.0.1:{p}/subject.png",
    "gopher://127.0.0.1:{p}/_GET%20/subject.png",
    "dict://127.0.0.1:{p}/info",
    "ldap://127.0.0.1:{p}/",
    "jar:http://127.0.0.1:{p}/a.jar!/subject.png",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==",
    "javascript:alert(1)",
    "oss://bucket/subject.png",
    "HTTP://127.0.0.1:{p}/subject.png",
    "hTtPs://localhost:{p}/subject.png",
    "//127.0.0.1:{p}/subject.png",
    "http:/127.0.0.1:{p}/subject.png",
    "http:127.0.0.1:{p}/subject.png",
    "127.0.0.1:{p}/subject.png",
]
USERINFO = [
    "http://public@127.0.0.1:{p}/subject.png",
    "http://user:pass@127.0.0.1:{p}/subject.png",
    "http://127.0.0.2:{t}@127.0.0.1:{p}/subject.png",
    "http://127.0.0.1:{p}@127.0.0.2:{t}/elsewhere.png",
    "http://a@b@127.0.0.1:{p}/subject.png",
    "http://127.0.0.2:{t}#@127.0.0.1:{p}/subject.png",
    "http://127.0.0.2:{t}?@127.0.0.1:{p}/subject.png",
    "http://127.0.0.1%2f@127.0.0.2:{t}/elsewhere.png",
]
BACKSLASHES = [
    "http://127.0.0.2:{t}\\@127.0.0.1:{p}/subject.png",
    "http://127.0.0.1:{p}\\@127.0.0.2:{t}/elsewhere.png",
    "http:\\\\127.0.0.1:{p}\\subject.png",
    "http://127.0.0.1:{p}\\subject.png",
]
WHITESPACE_AND_CONTROLS = [
    " http://127.0.0.1:{p}/subject.png",
    "http://127.0.0.1:{p}/subject.png ",
    "\thttp://127.0.0.1:{p}/subject.png",
    "http://127.0.0.1 :{p}/subject.png",
    "http://127.0.0.1:{p}/sub ject.png",
    "http://127.0.0.1:{p}/subject.png\u00a0",
    "http://127.0.0.1:{p}/subject.png\u2028",
    "http://127.0.0.1:{p}/\x00subject.png",
    "http://127.0.0.2:{t}/x\r\nHost: 127.0.0.1:{p}",
    "http://127.0.0.2:{t}/x\nX-Injected: 1",
    "http://127.0.0.2:{t}/x%0d%0aHost:%20127.0.0.1:{p}",
    "http://127.0.0.1:{p}\r\n/subject.png",
]
OVERLONG = [
    "http://127.0.0.2:{t}/" + "a" * 70_000,
    "http://" + "u" * 10_000 + "@127.0.0.1:{p}/subject.png",
    "http://127.0.0.1:{p}/subject.png?" + "q=1&" * 5_000,
]
IDN = [
    "http://\u24dbocalhost:{p}/subject.png",  # circled l: IDNA refuses it
    "http://\uff11\uff12\uff17.0.0.1:{p}/subject.png",  # full-width digits
    "http://127\u30020\u30020\u30021:{p}/subject.png",  # ideographic full stops
    "http://loc\uff41lhost:{p}/subject.png",  # full-width a
    "http://xn--ls8h:{p}/subject.png",  # punycode of a disallowed code point
    "http://localhost\u200b:{p}/subject.png",  # zero-width space
]
PERCENT_HOSTS = [
    "http://%31%32%37.0.0.1:{p}/subject.png",
    "http://loca%6chost:{p}/subject.png",
    "http://%5B::1%5D:{p6}/subject.png",
    "http://127.0.0.1%00.example:{p}/subject.png",
]
PORTS = [
    "http://127.0.0.2:0/subject.png",
    "http://127.0.0.2:65536/subject.png",
    "http://127.0.0.2:99999/subject.png",
    "http://127.0.0.2:-1/subject.png",
    "http://127.0.0.2:abc/subject.png",
    "http://127.0.0.1:{p}:{p}/subject.png",
    "http://[::1]:99999/subject.png",
]
ZONE_IDS = [
    "http://[fe80::1%25eth0]/subject.png",
    "http://[fe80::1%eth0]:{p}/subject.png",
    "http://[::1%25lo]:{p6}/subject.png",
    "http://[::ffff:127.0.0.1%25lo]:{p}/subject.png",
]
EMPTY_HOSTS = [
    "http://",
    "https://",
    "http:///subject.png",
    "http://:{p}/subject.png",
    "http://@/subject.png",
    "http://[]/subject.png",
    "http://?x=1",
    "http://#x",
    "http://.:{p}/subject.png",
]
LOOPBACK_SPELLINGS = [
    "http://[::ffff:127.0.0.1]:{p}/subject.png",
    "http://0x7f.0.0.1:{p}/subject.png",
    "http://017700000001:{p}/subject.png",
    "http://127.0.1:{p}/subject.png",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/subject.png",
]

CORPUS = {
    "scheme": SCHEMES,
    "userinfo": USERINFO,
    "backslash": BACKSLASHES,
    "whitespace": WHITESPACE_AND_CONTROLS,
    "overlong": OVERLONG,
    "idn": IDN,
    "percent-host": PERCENT_HOSTS,
    "port": PORTS,
    "zone-id": ZONE_IDS,
    "empty-host": EMPTY_HOSTS,
    "loopback": LOOPBACK_SPELLINGS,
}
CASES = [
    pytest.param(template, id=f"{kind}-{i}")
    for kind, templates in CORPUS.items()
    for i, template in enumerate(templates)
]


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    with loopback_targets() as targets:
        yield targets


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with guarded_server(tmp_path_factory.mktemp("hostile-urls")) as server:
        yield server


def _fill(template: str, targets: Targets) -> str:
    ports = {"{p}": targets.v4.port, "{p6}": targets.v6.port, "{t}": targets.trusted.port}
    for key, port in ports.items():
        template = template.replace(key, str(port))
    return template


def _create(server: LiveServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        server.api + CREATE, json=body, headers={**server.headers(), **headers}, timeout=30
    )


def _assert_refused(server: LiveServer, response: httpx.Response) -> str:
    """A DashScope-shaped 4xx, or a task that ends FAILED with an InvalidURL code.
    Returns: the error code."""
    body = response.json()
    if response.status_code != 200:
        assert 400 <= response.status_code < 500, (response.status_code, body)
        assert set(body) == {"code", "message", "request_id"}, body
        assert body["code"] == "InvalidParameter" and body["message"], body
        return str(body["code"])
    out = server.wait(body["output"]["task_id"])["output"]
    assert out["task_status"] == "FAILED", out
    assert out["code"].startswith("InvalidURL"), out
    return str(out["code"])


@pytest.mark.parametrize("template", CASES)
def test_hostile_media_url(server: LiveServer, targets: Targets, template: str) -> None:
    before = targets.loopback_connections
    url = _fill(template, targets)
    _assert_refused(server, _create(server, reference_task(url)))
    assert targets.loopback_connections == before, f"{url!r} reached a loopback server"


@pytest.mark.parametrize(
    "template",
    ["http://localhost:{p}/v.mp4", "http://[::1]:{p6}/v.mp4", "file:///dev/zero",
     "http://2130706433:{p}/v.mp4", "http://[::ffff:127.0.0.1]:{p}/v.mp4"],
)  # fmt: skip
def test_hostile_video_url(server: LiveServer, targets: Targets, template: str) -> None:
    before = targets.loopback_connections
    body = {
        "model": reference_task("")["model"],
        "input": {"function": "video_outpainting", "prompt": "p", "video_url": ""},
        "parameters": {"left_scale": 1.5},
    }
    body["input"]["video_url"] = _fill(template, targets)
    _assert_refused(server, _create(server, body))
    assert targets.loopback_connections == before


@pytest.mark.parametrize("value", [123, None, {"url": "http://127.0.0.1/"}, ["x"], ""])
def test_non_string_urls_are_refused_synchronously(server: LiveServer, value: object) -> None:
    body = reference_task("")
    body["input"]["ref_images_url"] = [value]
    assert _assert_refused(server, _create(server, body)) == "InvalidParameter"


def test_callback_to_loopback_is_refused_without_a_connection(
    server: LiveServer, targets: Targets
) -> None:
    """Webhook delivery follows the same rule: the attempt is recorded as failed and the
    loopback receiver never sees a connection."""
    before = targets.loopback_connections
    hooks = ["http://localhost:{p}/hook", "http://[::ffff:127.0.0.1]:{p}/hook",
             "http://0x7f.1:{p}/hook", "http://[::1]:{p6}/hook"]  # fmt: skip
    engine = create_engine(Settings(data_dir=server.data_dir).resolved_database_url())
    try:
        outbox = Outbox(engine)
        for hook in hooks:
            # the task itself fails fast (loopback media), then its webhook is due
            response = _create(
                server,
                reference_task(targets.loopback_urls()["dotted"]),
                **{"X-Vace-Callback-Url": _fill(hook, targets)},
            )
            task_id = response.json()["output"]["task_id"]
            server.wait(task_id)
            state = _first_attempt(outbox, task_id)
            assert "InvalidURL" in str(state["last_error"]), state
    finally:
        engine.dispose()
    assert targets.loopback_connections == before


def _first_attempt(outbox: Outbox, task_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = outbox.states(task_id)
        if states and int(states[0]["attempts"]) >= 1:  # type: ignore[call-overload]
            return states[0]
        time.sleep(0.2)
    raise AssertionError(f"no webhook attempt for {task_id}")


def test_server_is_healthy_after_the_corpus(server: LiveServer, targets: Targets) -> None:
    assert server.health()["status"] == "ok"
    ok = server.wait(server.submit(reference_task(targets.trusted.url("/subject.png"))))
    assert ok["output"]["task_status"] == "SUCCEEDED", ok
