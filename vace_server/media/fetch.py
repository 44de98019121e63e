"""Hostile-URL download (design principle 6: every URL is hostile).

The address policy is enforced where sockets are opened: a custom httpcore network backend
resolves the host itself, drops every address the rule of `media.addresses` refuses (unless
private networks are allowed) and connects to a vetted IP, so every redirect hop is checked and
a DNS answer cannot change between the check and the connect (DNS rebinding). TLS still
verifies the original host name.

Error mapping follows docs/contract.md §8.2; the real reason is logged at WARNING.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpcore
import httpx

from vace_server.errors import InputField, InvalidFile
from vace_server.media.addresses import (
    AddressPolicy,
    address_policy,
    is_public_address,
    refusal_reason,
)
from vace_server.media.download_errors import (
    INVALID_URL_MESSAGE,
    BlockedAddressError,
    RefusedConnectionError,
    ResolveError,
    Where,
    checked_url,
    invalid_url,
    mapped_errors,
    redact_url,
)
from vace_server.settings import Settings, parse_networks

__all__ = [
    "INVALID_URL_MESSAGE",
    "FetchedMedia",
    "UrlFetcher",
    "is_public_address",
    "redact_url",
    "system_resolver",
]

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
"""`(host, port) -> numeric IP strings`; raises OSError when the name does not resolve."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchedMedia:
    """A downloaded body. `final_url` is the URL after redirects."""

    data: bytes
    content_type: str | None
    final_url: str


# ---------------------------------------------------------------- resolving
def system_resolver(host: str, port: int) -> list[str]:
    """Resolves `host` with getaddrinfo.

    Returns: the numeric addresses, in the system's preference order, without duplicates.
    Raises: OSError (socket.gaierror) when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in out:
            out.append(ip)
    return out


class _Deadline:
    """The overall download deadline; clamps per-operation timeouts to what is left."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def clamp(self, timeout: float | None, exc: type[Exception]) -> float:
        left = self.remaining()
        if left <= 0:
            raise exc("overall download deadline exceeded")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads and writes never outlive the overall deadline, so a
    slow-drip body ends in a timeout instead of holding the worker."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        t = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, t), self._deadline
        )

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolves, filters the addresses through the policy, then connects to a vetted IP."""

    def __init__(self, resolve: Resolver, allowed: AddressPolicy, deadline: _Deadline) -> None:
        self._resolve = resolve
        self._allowed = allowed
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def _resolve_bounded(self, host: str, port: int) -> list[str]:
        """Runs the resolver in a daemon thread so a slow DNS server cannot pass the deadline."""
        result: list[str] = []
        error: list[BaseException] = []

        def run() -> None:
            try:
                result.extend(self._resolve(host, port))
            except BaseException as exc:  # handed to the caller below
                error.append(exc)

        thread = threading.Thread(target=run, name="vace-resolve", daemon=True)
        thread.start()
        thread.join(self._deadline.clamp(None, httpcore.ConnectTimeout))
        if thread.is_alive():
            raise httpcore.ConnectTimeout(f"resolving {host} exceeded the deadline")
        if error:
            raise ResolveError(f"cannot resolve {host}: {error[0]}")
        if not result:
            raise ResolveError(f"cannot resolve {host}: no addresses")
        return result

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._resolve_bounded(host, port)
        vetted: list[str] = []
        refused: list[str] = []
        reasons: list[str] = []
        for ip in addresses:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                refused.append(f"{ip} (not an IP address)")
                continue
            if self._allowed(address):
                vetted.append(ip)
            else:
                reason = refusal_reason(address) or "not allowed by the policy"
                refused.append(f"{ip} ({reason})")
                reasons.append(reason)
        if not vetted:
            literal = addresses == [host]
            raise BlockedAddressError(
                f"{host} resolves only to refused addresses: {'; '.join(refused)}",
                f"{host} is not a public address: {'; '.join(reasons) or 'refused'}"
                if literal
                else f"{host} resolves only to addresses that are not public: "
                f"{'; '.join(dict.fromkeys(reasons)) or 'refused'}",
            )

        errors: list[Exception] = []
        for ip in vetted:
            t = self._deadline.clamp(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(ip, port, t, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                errors.append(exc)
                continue
            return _DeadlineStream(stream, self._deadline)
        if all(isinstance(e.__cause__, ConnectionRefusedError) for e in errors):
            raise RefusedConnectionError(f"{host}:{port} refused the connection")
        timeouts = [e for e in errors if isinstance(e, httpcore.ConnectTimeout)]
        raise timeouts[0] if timeouts else errors[-1]

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedAddressError("unix sockets are never used for media")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx transport on top of a connection pool that uses `_GuardedBackend`, no proxies."""

    def __init__(self, backend: httpcore.NetworkBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=4,
            retries=0,
            network_backend=backend,
        )


# ---------------------------------------------------------------- public fetcher
def _format_mb(max_bytes: int) -> str:
    return f"{max_bytes / (1024 * 1024):g}"


class UrlFetcher:
    """Downloads untrusted http(s) URLs under the settings' network policy."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolve: Resolver | None = None,
        address_allowed: AddressPolicy | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """`resolve` and `address_allowed` replace the system resolver and the default policy
        (`addresses.address_policy`: public addresses and `media_allowed_networks`, or
        everything when `media_allow_private_networks`);
        `ssl_context` replaces the default verification context (certifi CAs). They are seams
        for tests and embedding."""
        self._settings = settings
        self._resolve = resolve or system_resolver
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._allowed: AddressPolicy = address_allowed or address_policy(
            allow_private=settings.media.media_allow_private_networks,
            trusted=parse_networks(settings.media.media_allowed_networks),
        )

    def fetch(self, url: str, *, field: InputField, max_bytes: int) -> FetchedMedia:
        """Downloads `url` (following up to `media_max_redirects` redirects, each hop checked).

        Returns: the body, its Content-Type and the final URL.
        Raises: InvalidURL (bad scheme/URL, HTTP status >= 400, DNS failure, refused address,
        too many redirects, other transport errors), InvalidURL.ConnectionRefused,
        InvalidURL.Timeout (connect/read timeout or the overall deadline), InvalidFile with
        code InvalidFile.Size when the body exceeds `max_bytes`."""
        s = self._settings
        headers = {"User-Agent": s.media.media_user_agent, "Accept-Encoding": "identity"}
        where = Where(url, field.mention, s)
        with mapped_errors(where), self._client(s.media.media_total_timeout, headers) as client:
            current = checked_url(where, url)
            for _hop in range(s.media.media_max_redirects + 1):
                with client.stream("GET", current) as response:
                    if response.status_code in _REDIRECT_STATUSES:
                        location = response.headers.get("location")
                        if not location:
                            raise invalid_url(
                                where,
                                f"the server answered {response.status_code} (a redirect) "
                                "without a Location header",
                            )
                        current = checked_url(where, current.join(location))
                        continue
                    if not 200 <= response.status_code < 300:
                        hop = (
                            ""
                            if str(current) == url
                            else f" (after redirects, at {redact_url(str(current))})"
                        )
                        raise invalid_url(
                            where, f"the server answered HTTP {response.status_code}{hop}"
                        )
                    data = _read_capped(response, field, max_bytes, url)
                    return FetchedMedia(
                        data=data,
                        content_type=response.headers.get("content-type"),
                        final_url=str(current),
                    )
            raise invalid_url(
                where,
                f"more than {s.media.media_max_redirects} redirects (VACE_MEDIA_MAX_REDIRECTS)",
            )

    def post(self, url: str, *, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POSTs `body` to an untrusted URL under the same address policy; redirects are not
        followed (a 3xx is returned as is). Returns the HTTP status.
        Raises: the same InvalidURL* errors as `fetch` (timeout covers the whole exchange)."""
        sent = {"User-Agent": self._settings.media.media_user_agent, **headers}
        where = Where(url, "the callback URL", self._settings)
        with mapped_errors(where), self._client(timeout, sent) as client:
            response = client.post(checked_url(where, url), content=body)
            return response.status_code

    @contextlib.contextmanager
    def _client(self, total_seconds: float, headers: dict[str, str]) -> Iterator[httpx.Client]:
        s = self._settings
        deadline = _Deadline(total_seconds)
        transport = _GuardedTransport(
            _GuardedBackend(self._resolve, self._allowed, deadline), self._ssl_context
        )
        timeout = httpx.Timeout(
            connect=s.media.media_connect_timeout,
            read=s.media.media_read_timeout,
            write=s.media.media_read_timeout,
            pool=s.media.media_connect_timeout,
        )
        try:
            with httpx.Client(
                transport=transport,
                timeout=timeout,
                headers=headers,
                follow_redirects=False,
                trust_env=False,
            ) as client:
                yield client
        finally:
            transport.close()


def _read_capped(response: httpx.Response, field: InputField, max_bytes: int, url: str) -> bytes:
    """Reads the body, stopping as soon as it exceeds `max_bytes`.

    Returns: the body. Raises: InvalidFile (InvalidFile.Size)."""
    too_large = InvalidFile(
        f"The file of {field.mention} exceeds the size limit of {_format_mb(max_bytes)} MB.",
        code="InvalidFile.Size",
    )
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        logger.warning("media download %s: Content-Length %s > %d", url, declared, max_bytes)
        raise too_large
    buffer = bytearray()
    for chunk in response.iter_bytes(_CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            logger.warning("media download %s: body exceeds %d bytes", url, max_bytes)
            raise too_large
    return bytes(buffer)
