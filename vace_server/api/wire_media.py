"""Synchronous syntax checks of media URLs in a create request (docs/contract.md §4).

Only the *shape* of a URL is judged here; reachability, format, size and the like are checked
after download and make the task FAILED instead. `field` is the client-visible path used in
error messages, e.g. `input.video_url`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from vace_server.api.wire_values import check_text
from vace_server.errors import InvalidParameter, field_invalid

OSS_PREFIX = "oss://"
# Longer URLs are refused outright: presigned object-store URLs with session tokens stay well
# under 4 KiB, and common HTTP servers refuse request lines past 8 KiB anyway.
MAX_URL_CHARS = 8192
OSS_WITHOUT_RESOLVE_MESSAGE = (
    "The provided URL does not appear to be valid. Ensure it is correctly formatted. "
    "An oss:// URL (from the upload flow) needs the header "
    "`X-DashScope-OssResourceResolve: enable`."
)

# Chinese characters: CJK radicals, CJK symbols and punctuation, Bopomofo, the unified
# ideographs with their extensions, compatibility ideographs/forms and full-width forms.
_CHINESE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u303f\u3100-\u312f\u31a0-\u31ef\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003134f]"
)
# Whitespace and control characters never appear in a well-formed URL.
_NOT_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")


def check_url(value: Any, field: str, *, oss_resolve: bool) -> str:
    """Returns `value` unchanged when it is an acceptable media URL.

    Accepted: `http://` / `https://` with a host, and `oss://<key>` when the request carried
    `X-DashScope-OssResourceResolve: enable`.

    Raises: InvalidParameter with the bad-value message naming `field` (not a string, empty,
    whitespace, control characters, lone surrogates, Chinese characters, data URI, other
    scheme, no host, longer than MAX_URL_CHARS), or with the fixed `oss://` message when
    `oss_resolve` is false.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        raise field_invalid(field)
    check_text(value, field)
    if _CHINESE.search(value) or _NOT_IN_URL.search(value):
        raise field_invalid(field)
    if value.startswith(OSS_PREFIX):
        if len(value) == len(OSS_PREFIX) or value[len(OSS_PREFIX)] == "/":
            raise field_invalid(field)
        if not oss_resolve:
            raise InvalidParameter(OSS_WITHOUT_RESOLVE_MESSAGE)
        return value
    if not _is_http_url(value):
        raise field_invalid(field)
    return value


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
