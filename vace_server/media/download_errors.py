"""Client-visible download failures (docs/contract.md §8.2): each keeps the contract's literal
first sentence, which clients match on, then names the field, the URL (redacted of
credentials) and the cause, and for a refused private address the setting that allows it.
The full reason (resolved addresses included) goes to the log at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from vace_server.errors import InvalidFile, InvalidURL
from vace_server.media.addresses import is_plain_host
from vace_server.settings import Settings

logger = logging.getLogger("vace_server.media.fetch")

INVALID_URL_MESSAGE = InvalidURL.default_message  # the literal first sentence (§8.2)


# ---------------------------------------------------------------- failure reasons of the transport
class BlockedAddressError(Exception):
    """Every address of a host is refused by the address policy. `shown` is the client's
    version: the refusing blocks without the addresses a name resolved to (those stay in the
    log; a client need not learn the server's internal DNS)."""

    def __init__(self, message: str, shown: str | None = None) -> None:
        super().__init__(message)
        self.shown = shown or message


class ResolveError(Exception):
    """The host name did not resolve."""


class RefusedConnectionError(Exception):
    """Every address of a host actively refused the TCP connection."""


# ---------------------------------------------------------------- client-visible causes
_PRIVATE_FIX = (
    "this server only downloads from public addresses; its operator can allow private ones "
    "with VACE_MEDIA_ALLOW_PRIVATE_NETWORKS=true, or trust one network with "
    "VACE_MEDIA_ALLOWED_NETWORKS=<CIDR>"
)


def redact_url(url: str) -> str:
    """`url` fit for a message or a log line: user:password replaced by `***`, and every query
    value (presigned URLs carry signatures and tokens there) by `***`; names stay, so the
    client still sees which URL it was."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "<unparsable URL>"
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        names = [item.split("=", 1)[0] for item in query.split("&")]
        query = "&".join(f"{name}=***" if name else "" for name in names)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Where:
    """What a download failure message names: the URL as given and the field it came from."""

    url: str
    field: str  # an `InputField.mention` or a plain label ("the callback URL")
    settings: Settings

    @property
    def shown(self) -> str:
        return redact_url(self.url)


@contextlib.contextmanager
def mapped_errors(where: Where) -> Iterator[None]:
    """Turns transport failures into the contract's InvalidURL* errors: the literal first
    sentence clients match on, then the field, the (redacted) URL and the cause."""
    media = where.settings.media
    try:
        yield
    except (InvalidURL, InvalidFile):
        raise
    except httpx.TimeoutException as exc:
        logger.warning("media download %s timed out: %r", where.shown, exc)
        raise InvalidURL(
            f"Download {where.shown} timeout, please check network connection. "
            f"{where.field}: no complete answer within the download limits "
            f"(connect {media.media_connect_timeout:g} s, read {media.media_read_timeout:g} s, "
            f"total {media.media_total_timeout:g} s).",
            code="InvalidURL.Timeout",
        ) from exc
    except RefusedConnectionError as exc:
        logger.warning("media download %s: %s", where.shown, exc)
        raise InvalidURL(
            f"Connection to {where.shown} refused, please provide available URL. "
            f"{where.field}: nothing accepts connections at that host and port.",
            code="InvalidURL.ConnectionRefused",
        ) from exc
    except BlockedAddressError as exc:
        logger.warning("media download %s: %s", where.shown, exc)
        raise invalid_url(where, f"{exc.shown}; {_PRIVATE_FIX}") from exc
    except ResolveError as exc:
        raise invalid_url(where, f"DNS failure: {exc}") from exc
    except (
        httpx.HTTPError,
        httpx.InvalidURL,
        httpcore.ProtocolError,
        OSError,
        UnicodeError,
    ) as exc:
        logger.warning("media download %s: %r", where.shown, exc)
        raise invalid_url(where, f"the download failed ({type(exc).__name__})") from exc


def invalid_url(where: Where, cause: str) -> InvalidURL:
    logger.warning("media download %s refused/failed: %s", where.shown, cause)
    return InvalidURL(f"{INVALID_URL_MESSAGE} {where.field} ({where.shown}): {cause}.")


def checked_url(where: Where, candidate: str | httpx.URL) -> httpx.URL:
    """Parses a URL (the request's or a redirect target) and allows only http(s) with a host.

    Returns: the parsed URL. Raises: InvalidURL."""
    target = "" if str(candidate) == where.url else f" (redirect to {redact_url(str(candidate))})"
    try:
        parsed = httpx.URL(candidate) if isinstance(candidate, str) else candidate
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise invalid_url(where, f"unparsable URL{target} ({exc})") from exc
    if parsed.scheme not in ("http", "https"):
        raise invalid_url(where, f"only http:// and https:// are downloaded{target}")
    host = parsed.raw_host.decode("ascii", errors="replace")  # as dialled: IDNA-encoded
    if not host:
        raise invalid_url(where, f"the URL has no host{target}")
    try:
        parsed.host  # noqa: B018 - decodes xn-- labels; invalid punycode raises
    except UnicodeError as exc:
        raise invalid_url(where, f"host {host!r} is not a valid IDNA name{target}") from exc
    if not is_plain_host(host):
        raise invalid_url(where, f"host {host!r} is neither a name nor an IP address{target}")
    return parsed
