"""The address guard end to end: a real `serve` with private networks refused fails every task
whose media is on loopback — whatever the spelling, also behind a redirect — without the
loopback servers ever seeing a connection, and still fetches from a network it was told to
trust (`VACE_MEDIA_ALLOWED_NETWORKS`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.guard import (
    LOOPBACK_NAMES,
    Targets,
    guarded_server,
    loopback_targets,
    reference_task,
)
from tests.support.live_server import LiveServer
from tests.support.media_server import Served


@pytest.fixture(scope="module")
def targets() -> Iterator[Targets]:
    with loopback_targets() as targets:
        yield targets


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with guarded_server(tmp_path_factory.mktemp("guard")) as server:
        yield server


# httpx refuses the legacy octal form (0177.0.0.1) as a URL, before any address is checked.
UNPARSABLE = {"octal"}


def _assert_refused(server: LiveServer, task_id: str, name: str = "") -> None:
    out = server.wait(task_id)["output"]
    assert out["task_status"] == "FAILED", out
    assert out["code"] == "InvalidURL", out
    # the literal first sentence, then the cause and the setting that allows private addresses
    assert out["message"].startswith(
        "Invalid URL provided in your request. input.ref_images_url ("
    ), out
    if name in UNPARSABLE:
        assert "unparsable URL (Invalid IPv4 address" in out["message"], out
        return
    # "127.0.0.1 is not a public address: …" or "h resolves only to addresses that are not public"
    assert re.search(r"not (a )?public", out["message"]), out
    assert "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=true" in out["message"], out


@pytest.mark.parametrize("name", LOOPBACK_NAMES)
def test_loopback_media_is_refused(server: LiveServer, targets: Targets, name: str) -> None:
    before = targets.loopback_connections
    url = targets.loopback_urls()[name]
    _assert_refused(server, server.submit(reference_task(url)), name)
    assert targets.loopback_connections == before, f"{url} reached a loopback server"


@pytest.mark.parametrize("name", ["dotted", "localhost", "ipv6", "mapped", "decimal", "zero"])
def test_redirect_from_a_trusted_host_to_loopback_is_refused(
    server: LiveServer, targets: Targets, name: str
) -> None:
    path = f"/to-{name}"
    redirect = targets.trusted.add(path, Served(b"", redirect=targets.loopback_urls()[name]))
    before = targets.loopback_connections
    _assert_refused(server, server.submit(reference_task(redirect)))
    assert targets.trusted.hits[path] == 1  # the first hop was fetched ...
    assert targets.loopback_connections == before  # ... the second never dialled


def test_trusted_network_serves_media_while_loopback_stays_refused(
    server: LiveServer, targets: Targets
) -> None:
    before = targets.loopback_connections
    ok = server.wait(server.submit(reference_task(targets.trusted.url("/subject.png"))))
    assert ok["output"]["task_status"] == "SUCCEEDED", ok
    assert targets.trusted.hits["/subject.png"] >= 1
    refused = server.submit(reference_task(targets.v4.url("/subject.png")))
    _assert_refused(server, refused)
    assert targets.loopback_connections == before
    assert server.health()["status"] == "ok"
