from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import pytest

from vace_server.api.wire_names import wire_message
from vace_server.errors import InputField, InvalidFile, InvalidURL
from vace_server.media.download_errors import BlockedAddressError
from vace_server.media.fetch import UrlFetcher, _Deadline, _GuardedBackend
from vace_server.settings import Settings

FIELD = InputField.REFERENCES

BODY = b"hello media" * 10
_SERVER_DONE = threading.Event()  # set when the module's server stops: ends /drip and /stall
LOOPBACK_ONLY = ipaddress.ip_address("127.0.0.1")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_user_agents: list[str] = []  # noqa: RUF012 - shared on purpose, per test server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen_user_agents.append(self.headers.get("User-Agent", ""))
        port = self.server.server_address[1]  # type: ignore[index]
        path = self.path
        if path == "/ok":
            self._send(200, BODY, {"Content-Type": "image/png"})
        elif path == "/missing":
            self._send(404, b"nope")
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            target = "/ok" if left == 0 else f"/hops/{left - 1}"
            self._send(302, headers={"Location": target})
        elif path == "/loop":
            self._send(302, headers={"Location": "/loop"})
        elif path == "/to-other-loopback":
            self._send(302, headers={"Location": f"http://127.0.0.2:{port}/ok"})
        elif path == "/to-file":
            self._send(302, headers={"Location": "file:///etc/passwd"})
        elif path == "/big-declared":
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for _ in range(10):
                    self.wfile.write(b"200\r\n" + b"x" * 0x200 + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif path == "/drip":
            # A byte every 0.1 s, for far longer than any test waits: only a deadline ends it.
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    if _SERVER_DONE.wait(0.1):
                        return
            except OSError:
                pass
        elif path == "/stall":
            # Headers, then nothing for 30 s (then the connection closes: a short body, no
            # timeout): only a read timeout makes the fetch a Timeout.
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.flush()
            _SERVER_DONE.wait(30)
        else:
            self._send(500)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hanging up early (size caps, timeouts) are expected here


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _SERVER_DONE.set()
        httpd.shutdown()
        httpd.server_close()


def _fetcher(allow: bool = True, **kw: object) -> UrlFetcher:
    settings = Settings(media_allow_private_networks=allow, **kw)  # type: ignore[arg-type]
    return UrlFetcher(settings)


def _code(exc: pytest.ExceptionInfo[Exception]) -> str:
    return exc.value.code  # type: ignore[attr-defined,no-any-return]


def test_ok_sends_user_agent(server: str) -> None:
    fetcher = _fetcher(media_user_agent="TestBot/1")
    media = fetcher.fetch(f"{server}/ok", field=FIELD, max_bytes=10_000)
    assert media.data == BODY
    assert media.content_type == "image/png"
    assert media.final_url == f"{server}/ok"
    assert "TestBot/1" in _Handler.seen_user_agents


def test_http_404_is_invalid_url(server: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(InvalidURL) as exc:
        _fetcher().fetch(f"{server}/missing", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert wire_message(exc.value.message) == (
        f"Invalid URL provided in your request. input.ref_images_url ({server}/missing): "
        "the server answered HTTP 404."
    )
    assert "404" in caplog.text


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(InvalidURL) as exc:
        _fetcher().fetch(url, field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL.ConnectionRefused"
    assert wire_message(exc.value.message) == (
        f"Connection to {url} refused, please provide available URL. "
        "input.ref_images_url: nothing accepts connections at that host and port."
    )


def test_loopback_refused_by_default(server: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(InvalidURL) as exc:
        _fetcher(allow=False).fetch(f"{server}/ok", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert "refused addresses" in caplog.text
    # the client learns the cause and the setting that allows it, not only the log
    assert wire_message(exc.value.message) == (
        f"Invalid URL provided in your request. input.ref_images_url ({server}/ok): "
        "127.0.0.1 is not a public address: 127.0.0.0/8 (loopback (RFC 1122)); this server "
        "only downloads "
        "from public addresses; its operator can allow private ones with "
        "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=true, or trust one network with "
        "VACE_MEDIA_ALLOWED_NETWORKS=<CIDR>."
    )


def test_hostname_resolving_to_loopback_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    url = f"http://media.example:{port}/ok"
    settings = Settings(media_allow_private_networks=False)
    fetcher = UrlFetcher(settings, resolve=lambda host, port: ["127.0.0.1"])
    with pytest.raises(InvalidURL) as exc:
        fetcher.fetch(url, field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    # the cause names the block, never the address the name resolved to
    message = wire_message(exc.value.message)
    assert (
        "media.example resolves only to addresses that are not public: 127.0.0.0/8 (loopback"
        in message
    )
    assert "127.0.0.1" not in message.replace("127.0.0.0/8", "")
    assert "VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=true" in message
    # the same name reaches the vetted IP when the policy allows it
    allowed = UrlFetcher(
        settings, resolve=lambda host, port: ["127.0.0.1"], address_allowed=lambda a: True
    )
    assert allowed.fetch(url, field=FIELD, max_bytes=1000).data == BODY


def test_redirects_followed(server: str) -> None:
    media = _fetcher(media_max_redirects=3).fetch(f"{server}/hops/2", field=FIELD, max_bytes=1000)
    assert media.data == BODY
    assert media.final_url == f"{server}/ok"


def test_redirect_to_refused_address_checked_per_hop(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    # only 127.0.0.1 is allowed: the first hop passes, the redirect to 127.0.0.2 must not
    fetcher = UrlFetcher(Settings(), address_allowed=lambda a: a == LOOPBACK_ONLY)
    with caplog.at_level(logging.WARNING), pytest.raises(InvalidURL) as exc:
        fetcher.fetch(f"{server}/to-other-loopback", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert "127.0.0.2" in caplog.text and "refused addresses" in caplog.text


def test_redirect_to_other_scheme_refused(server: str) -> None:
    with pytest.raises(InvalidURL) as exc:
        _fetcher().fetch(f"{server}/to-file", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"


def test_redirect_loop_limit(server: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(InvalidURL) as exc:
        _fetcher(media_max_redirects=3).fetch(f"{server}/loop", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert "more than 3 redirects" in caplog.text


def test_too_many_hops(server: str) -> None:
    with pytest.raises(InvalidURL):
        _fetcher(media_max_redirects=1).fetch(f"{server}/hops/2", field=FIELD, max_bytes=1000)


def test_slow_drip_hits_overall_deadline(server: str) -> None:
    # A byte every 0.1 s never trips a 60 s read timeout, and the drip outlasts the test by
    # far: a Timeout here can only be the 1 s overall deadline (no stopwatch needed).
    fetcher = _fetcher(media_read_timeout=60.0, media_total_timeout=1.0)
    url = f"{server}/drip"
    with pytest.raises(InvalidURL) as exc:
        fetcher.fetch(url, field=FIELD, max_bytes=10_000)
    assert _code(exc) == "InvalidURL.Timeout"
    assert wire_message(exc.value.message) == (
        f"Download {url} timeout, please check network connection. input.ref_images_url: "
        "no complete answer within the download limits (connect 10 s, read 60 s, total 1 s)."
    )


def test_stalled_body_hits_read_timeout(server: str) -> None:
    # The body does not come for 30 s (then the server hangs up: a short body, not a
    # timeout) and the overall deadline is a minute away: a Timeout is the 0.3 s read timeout.
    fetcher = _fetcher(media_read_timeout=0.3, media_total_timeout=60.0)
    with pytest.raises(InvalidURL) as exc:
        fetcher.fetch(f"{server}/stall", field=FIELD, max_bytes=10_000)
    assert _code(exc) == "InvalidURL.Timeout"


def test_too_large_by_content_length(server: str) -> None:
    with pytest.raises(InvalidFile) as exc:
        _fetcher().fetch(f"{server}/big-declared", field=FIELD, max_bytes=1024)
    assert _code(exc) == "InvalidFile.Size"
    message = wire_message(exc.value.message)
    assert "input.ref" in message and "MB" in message


def test_too_large_chunked(server: str) -> None:
    with pytest.raises(InvalidFile) as exc:
        _fetcher().fetch(f"{server}/big-chunked", field=FIELD, max_bytes=2048)
    assert _code(exc) == "InvalidFile.Size"


def test_size_limit_message_in_mb() -> None:
    from vace_server.media.fetch import _format_mb

    assert _format_mb(10 * 1024 * 1024) == "10"
    assert _format_mb(50 * 1024 * 1024) == "50"


@pytest.mark.parametrize(
    "url", ["ftp://a.example/x.png", "oss://bucket/key.png", "file:///etc/passwd", "http://", "x"]
)
def test_non_http_scheme(url: str) -> None:
    with pytest.raises(InvalidURL) as exc:
        _fetcher().fetch(url, field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"


def test_dns_failure_is_invalid_url() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(-2, "Name or service not known")

    fetcher = UrlFetcher(Settings(), resolve=fail)
    with pytest.raises(InvalidURL) as exc:
        fetcher.fetch("http://nowhere.example/x", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert wire_message(exc.value.message) == (
        "Invalid URL provided in your request. input.ref_images_url (http://nowhere.example/x): "
        "DNS failure: cannot resolve nowhere.example: [Errno -2] Name or service not known."
    )


def test_messages_redact_credentials_and_query_values() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(-2, "Name or service not known")

    url = "https://user:s3cret@nowhere.example/x.png?X-Amz-Signature=abc&token=t0k"
    with pytest.raises(InvalidURL) as exc:
        UrlFetcher(Settings(), resolve=fail).fetch(url, field=FIELD, max_bytes=1000)
    message = wire_message(exc.value.message)
    assert "(https://***@nowhere.example/x.png?X-Amz-Signature=***&token=***)" in message
    assert "s3cret" not in message and "abc" not in message and "t0k" not in message


def test_scheme_of_a_redirect_is_named(server: str) -> None:
    with pytest.raises(InvalidURL) as exc:
        _fetcher().fetch(f"{server}/to-file", field=FIELD, max_bytes=1000)
    assert "only http:// and https:// are downloaded (redirect to file:" in exc.value.message


class _RecordingBackend(httpcore.NetworkBackend):
    """Stands in for the socket layer under `_GuardedBackend`: records where it was asked to
    connect and refuses, so no test ever sends a packet to a non-loopback address."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    def connect_tcp(self, host: str, port: int, *args: object, **kw: object) -> Any:
        self.connects.append(host)
        raise httpcore.ConnectError("recorded, not connected")


def _guarded(answer: list[str]) -> tuple[_GuardedBackend, _RecordingBackend]:
    settings = Settings(media_allow_private_networks=False)
    policy = UrlFetcher(settings)._allowed
    backend = _GuardedBackend(lambda host, port: answer, policy, _Deadline(5.0))
    recorder = _RecordingBackend()
    backend._inner = recorder  # type: ignore[assignment]
    return backend, recorder


@pytest.mark.parametrize(
    "answer",
    [["fec0::1"], ["10.0.0.1"], ["::ffff:127.0.0.1"], ["64:ff9b::a00:1"], ["2002:a00:1::1"],
     ["2001:0:4136:e378:8000:63bf:f5ff:fffe"], ["fe80::1%eth0"], ["192.0.0.9"], ["not-an-ip"]],
)  # fmt: skip
def test_refused_answers_never_reach_the_socket_layer(
    answer: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    backend, recorder = _guarded(answer)
    with pytest.raises(BlockedAddressError, match="refused addresses"):
        backend.connect_tcp("media.example", 80)
    assert recorder.connects == []


def test_only_vetted_addresses_of_a_mixed_answer_are_dialled() -> None:
    backend, recorder = _guarded(["10.0.0.1", "8.8.8.8", "fec0::1", "2001:4860:4860::8888"])
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("media.example", 80)
    assert recorder.connects == ["8.8.8.8", "2001:4860:4860::8888"]


def test_refusal_log_names_the_block(caplog: pytest.LogCaptureFixture) -> None:
    fetcher = UrlFetcher(Settings(), resolve=lambda host, port: ["fec0::1"])
    with caplog.at_level(logging.WARNING), pytest.raises(InvalidURL) as exc:
        fetcher.fetch("http://media.example/x.png", field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert "fec0::1 (fec0::/10 (deprecated site local" in caplog.text


def test_allowed_networks_setting_trusts_one_loopback_address(server: str) -> None:
    trusted = _QuietServer(("127.0.0.2", 0), _Handler)
    threading.Thread(target=trusted.serve_forever, daemon=True).start()
    try:
        fetcher = UrlFetcher(Settings(media_allowed_networks="127.0.0.2/32"))
        url = f"http://127.0.0.2:{trusted.server_address[1]}/ok"
        assert fetcher.fetch(url, field=FIELD, max_bytes=1000).data == BODY
        with pytest.raises(InvalidURL):  # 127.0.0.1 stays refused
            fetcher.fetch(f"{server}/ok", field=FIELD, max_bytes=1000)
    finally:
        trusted.shutdown()
        trusted.server_close()


def test_bad_allowed_networks_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="allowed networks"):
        Settings(media_allowed_networks="10.0.0.1/8")


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_verifies_original_host_name(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "media.test")
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        fetcher = UrlFetcher(
            Settings(media_allow_private_networks=True),
            resolve=lambda host, port: ["127.0.0.1"],
            ssl_context=client_ctx,
        )
        media = fetcher.fetch(f"https://media.test:{port}/ok", field=FIELD, max_bytes=1000)
        assert media.data == BODY
        with pytest.raises(InvalidURL):  # connected to the same IP under another name
            fetcher.fetch(f"https://other.test:{port}/ok", field=FIELD, max_bytes=1000)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://[fe80::1%25eth0]/x.png",
        "http://%31%32%37.0.0.1/x.png",
        "http://loca%6chost/x.png",
        "http://a..b/x.png",
        "http://xn--ls8h/x.png",
        f"http://{'a' * 64}.example/x.png",
    ],
)
def test_odd_hosts_are_refused_before_any_lookup(url: str) -> None:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return []

    with pytest.raises(InvalidURL) as exc:
        UrlFetcher(Settings(), resolve=resolve).fetch(url, field=FIELD, max_bytes=1000)
    assert _code(exc) == "InvalidURL"
    assert asked == []


def test_webhook_post_follows_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = _RecordingBackend()
    monkeypatch.setattr(httpcore, "SyncBackend", lambda: recorder)
    fetcher = UrlFetcher(Settings(), resolve=lambda host, port: ["fec0::1", "10.0.0.1"])
    for url in ("http://hooks.example/h", "http://[fec0::1]/h", "http://[::ffff:10.0.0.1]/h"):
        with pytest.raises(InvalidURL):
            fetcher.post(url, body=b"{}", headers={}, timeout=2.0)
    assert recorder.connects == []
