"""A live server with the address guard ON, and loopback targets that count every connection.

`TRUSTED_HOST` (127.0.0.2) is the one network the server is told to trust
(`VACE_MEDIA_ALLOWED_NETWORKS`): it stands in for a public media host, so tests never need
an address outside loopback. The targets on 127.0.0.1 and ::1 must never be reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.images import png_bytes, subject_on_white
from tests.support.live_server import LiveServer
from tests.support.media_server import MediaServer, Served

TRUSTED_HOST = "127.0.0.2"
MODEL = "wanx2.1-vace-plus"


@dataclass
class Targets:
    """`trusted` serves /subject.png (allowed); `v4` (127.0.0.1) and `v6` (::1) are loopback
    servers the guard must keep the server away from."""

    trusted: MediaServer
    v4: MediaServer
    v6: MediaServer

    @property
    def loopback_connections(self) -> int:
        return self.v4.connections + self.v6.connections

    def loopback_urls(self, path: str = "/subject.png") -> dict[str, str]:
        """`LOOPBACK_SPELLINGS` filled in with the ports of `v4` / `v6` and `path`."""
        ports = {"p": self.v4.port, "p6": self.v6.port}
        return {name: f"http://{netloc.format(**ports)}{path}" for name, netloc in LOOPBACK}


# Spellings of a loopback target. Each reaches a listening server unless refused (or at worst
# another loopback port); none needs a DNS query.
LOOPBACK = [
    ("dotted", "127.0.0.1:{p}"),
    ("localhost", "localhost:{p}"),
    ("LOCALHOST", "LOCALHOST:{p}"),
    ("ipv6", "[::1]:{p6}"),
    ("ipv6-long", "[0:0:0:0:0:0:0:1]:{p6}"),
    ("ipv6-unspecified", "[::]:{p6}"),
    ("mapped", "[::ffff:127.0.0.1]:{p}"),
    ("mapped-hex", "[::ffff:7f00:1]:{p}"),
    ("decimal", "2130706433:{p}"),
    ("hex", "0x7f000001:{p}"),
    ("hex-dotted", "0x7f.1:{p}"),
    ("short", "127.1:{p}"),
    ("octal", "0177.0.0.1:{p}"),
    ("zero", "0:{p}"),
    ("zeros", "0.0.0.0:{p}"),
    ("other-loopback", "127.127.127.127:{p}"),
]
LOOPBACK_NAMES = [name for name, _ in LOOPBACK]


@contextmanager
def loopback_targets() -> Iterator[Targets]:
    image = png_bytes(subject_on_white())
    with ExitStack() as stack:
        servers = []
        for host in (TRUSTED_HOST, "127.0.0.1", "::1"):
            server = stack.enter_context(MediaServer(host))
            server.add("/subject.png", Served(image, "image/png"))
            servers.append(server)
        yield Targets(*servers)


@contextmanager
def guarded_server(root: Path) -> Iterator[LiveServer]:
    """A started `serve` (data and log under `root`) with private networks refused and only
    `TRUSTED_HOST` trusted; stopped on exit."""
    server = LiveServer(
        root / "data",
        root / "server.log",
        VACE_MEDIA_ALLOW_PRIVATE_NETWORKS="0",
        VACE_MEDIA_ALLOWED_NETWORKS=f"{TRUSTED_HOST}/32",
    ).start()
    try:
        yield server
    finally:
        server.stop()


def reference_task(url: str) -> dict[str, Any]:
    """The smallest create body that downloads `url` (one reference image)."""
    return {
        "model": MODEL,
        "input": {"function": "image_reference", "prompt": "p", "ref_images_url": [url]},
        "parameters": {},
    }
