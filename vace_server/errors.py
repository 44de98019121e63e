"""Typed, client-visible errors. Each carries a DashScope code, an HTTP status and a message.

Raised anywhere (API, media, functions, engine); rendered once by the API's exception handler
as `{"code","message","request_id"}`, or stored on a FAILED task as `output.code/message`.

Below `api/` a message names a task input by its `InputField` mention, never by its DashScope
wire name: the API writes the wire name in (`api/wire_names.py`) whenever it shows a message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable

# A mention is the field's value between two control characters. No client text that reaches a
# message can hold one (the API refuses control characters in every URL), so a mention can be
# neither forged nor mistaken; `=` after the opening mark asks for the key alone.
_OPEN, _CLOSE, _KEY_ONLY = "\x1e", "\x1f", "="
_MENTION = re.compile(f"{_OPEN}({_KEY_ONLY}?)([a-z_.]+){_CLOSE}")


class InputField(enum.StrEnum):
    """A task input that an error message can name, by its `TaskSpec` attribute (path).

    A message writes `field.mention` (shown to clients as the full wire name: object and key)
    or `field.key_mention` (the key alone); `str(error)` shows the attribute names instead, for
    logs."""

    VIDEO = "video_url"
    MASK_IMAGE = "mask_image_url"
    MASK_VIDEO = "mask_video_url"
    MASK_FRAME_ID = "mask_frame_id"
    REFERENCES = "references"
    FIRST_FRAME = "first_frame_url"
    LAST_FRAME = "last_frame_url"
    FIRST_CLIP = "first_clip_url"
    LAST_CLIP = "last_clip_url"
    CONTROL = "control"
    OUTPAINT_TOP = "outpaint.top"
    OUTPAINT_BOTTOM = "outpaint.bottom"
    OUTPAINT_LEFT = "outpaint.left"
    OUTPAINT_RIGHT = "outpaint.right"

    @property
    def mention(self) -> str:
        """This field in a message, shown to clients as its full wire name."""
        return f"{_OPEN}{self.value}{_CLOSE}"

    @property
    def key_mention(self) -> str:
        """This field in a message, shown to clients as its wire key alone."""
        return f"{_OPEN}{_KEY_ONLY}{self.value}{_CLOSE}"


FieldNamer = Callable[[InputField, bool], str]
"""(field, key_only) -> how a message shows that field."""


def name_fields(text: str, name: FieldNamer) -> str:
    """`text` with every field mention replaced by `name(field, key_only)`. A mention of a field
    this version does not know (a row written by a newer one) shows its attribute name."""

    def replace(match: re.Match[str]) -> str:
        key_only, value = bool(match.group(1)), match.group(2)
        try:
            field = InputField(value)
        except ValueError:
            return value
        return name(field, key_only)

    return _MENTION.sub(replace, text)


def _attribute_name(field: InputField, key_only: bool) -> str:
    del key_only
    return field.value


class ServiceError(Exception):
    """Base of every error a client may see."""

    code: str = "InternalError"
    status: int = 500
    default_message: str = (
        "An internal error has occurred, please try again later or contact service support."
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.retry_after = retry_after  # seconds; sent as Retry-After when set
        super().__init__(self.message)

    @property
    def fields(self) -> tuple[InputField, ...]:
        """The task inputs the message names, in order (what a caller can test without
        reading the text)."""
        found: list[InputField] = []

        def note(field: InputField, key_only: bool) -> str:
            found.append(field)
            return _attribute_name(field, key_only)

        name_fields(self.message, note)
        return tuple(found)

    def __str__(self) -> str:
        """The message with each field mention as its attribute name (for logs and tracebacks;
        `message` keeps the mentions for the API to name)."""
        return name_fields(self.message, _attribute_name)


# ---------------------------------------------------------------- synchronous (HTTP) errors
class InvalidParameter(ServiceError):
    code = "InvalidParameter"
    status = 400
    default_message = "Required body invalid, please check the request body format."


def field_required(field: str) -> InvalidParameter:
    """`field`: a wire name (the API's validator) or an `InputField.mention`."""
    return InvalidParameter(f"Field required: {field}")


def field_invalid(field: str, allowed: Iterable[str] = ()) -> InvalidParameter:
    """The contract's bad-value message; for a field with a closed set of values, `allowed`
    lists them after it (clients match on the first sentence only)."""
    message = (
        f"Required parameter({field}) missing or invalid, please check the request parameters."
    )
    values = list(allowed)
    if values:
        message += f" Allowed values: {', '.join(values)}."
    return InvalidParameter(message)


class EmptyInput(ServiceError):
    code = "BadRequest.EmptyInput"
    status = 400
    default_message = "Required input parameter missing from request."


class EmptyModel(ServiceError):
    code = "BadRequest.EmptyModel"
    status = 400
    default_message = 'Required parameter "model" missing from request.'


class IllegalInput(ServiceError):
    code = "BadRequest.IllegalInput"
    status = 400
    default_message = "The input parameter requires json format."


class UnsupportedOperation(ServiceError):
    code = "UnsupportedOperation"
    status = 400
    default_message = "Failed to cancel the task, please confirm if the task is in PENDING status."


class InvalidApiKey(ServiceError):
    code = "InvalidApiKey"
    status = 401
    default_message = "Invalid API-key provided."


class AccessDenied(ServiceError):
    code = "AccessDenied"
    status = 403
    default_message = "current user api does not support synchronous calls."


class NotFound(ServiceError):
    code = "NotFound"
    status = 404
    default_message = "The requested resource does not exist."


class MethodNotAllowed(ServiceError):
    code = "MethodNotAllowed"
    status = 405
    default_message = "The request method is not allowed for this resource."


class RateQuota(ServiceError):
    code = "Throttling.RateQuota"
    status = 429
    default_message = "Requests rate limit exceeded, please try again later."


class ConcurrencyQuota(ServiceError):
    code = "Throttling.Concurrency"
    status = 429
    default_message = "Too many concurrent requests."


class InternalError(ServiceError):
    code = "InternalError"
    status = 500


class RequestTooLarge(ServiceError):
    """A request body over the cap (`VACE_MAX_REQUEST_BYTES`); sent with `Connection: close`
    since the rest of the body is never read."""

    code = "InvalidParameter"
    status = 413

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"Request body too large: the limit is {limit_bytes} bytes, "
            "please check the request body."
        )


class RequestTimeout(ServiceError):
    """The request body stalled (`VACE_REQUEST_BODY_TIMEOUT_SECONDS` without a byte): sent
    with `Connection: close`, the rest is never read."""

    code = "RequestTimeOut"
    status = 408

    def __init__(self, idle_seconds: float) -> None:
        super().__init__(
            f"Request timed out: no part of the request body arrived for {idle_seconds:g} seconds."
        )


class ServiceUnavailable(ServiceError):
    """The database cannot be reached (or is locked) right now: sent with `Retry-After`."""

    code = "ServiceUnavailable"
    status = 503
    default_message = "The service is temporarily unavailable, please try again later."


# ---------------------------------------------------------------- asynchronous (task) errors
class InvalidURL(ServiceError):
    code = "InvalidURL"
    status = 400
    default_message = "Invalid URL provided in your request."


class InvalidFile(ServiceError):
    """Media problems seen after download; `code` is one of the InvalidFile.* codes."""

    code = "InvalidFile"
    status = 400
    default_message = "Invalid file, cannot open file as video/audio/image."


class AlgoError(ServiceError):
    code = "InternalError.Algo"
    status = 500
    default_message = "An internal error has occurred during algorithm execution."


class TaskTimeout(ServiceError):
    code = "InternalError.Timeout"
    status = 500
    default_message = (
        "An internal timeout error has occurred during execution, please try again later or "
        "contact service support."
    )


class UploadError(ServiceError):
    code = "InternalError.Upload"
    status = 500
    default_message = "Failed to upload result."


class NotYetSupported(ServiceError):
    code = "InvalidParameter"
    status = 400


class AnnotatorUnavailable(ServiceError):
    """The request needs an annotator model this server has not been given (never silently
    replaced by something else). The message says which checkpoint to install where."""

    code = "InvalidParameter"
    status = 400
