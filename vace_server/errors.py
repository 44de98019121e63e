"""Typed, client-visible errors. Each carries a DashScope code, an HTTP status and a message.

Raised anywhere (API, media, functions, engine); rendered once by the API's exception handler
as `{"code","message","request_id"}`, or stored on a FAILED task as `output.code/message`.
"""

from __future__ import annotations


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


# ---------------------------------------------------------------- synchronous (HTTP) errors
class InvalidParameter(ServiceError):
    code = "InvalidParameter"
    status = 400
    default_message = "Required body invalid, please check the request body format."


def field_required(field: str) -> InvalidParameter:
    return InvalidParameter(f"Field required: {field}")


def field_invalid(field: str) -> InvalidParameter:
    return InvalidParameter(
        f"Required parameter({field}) missing or invalid, please check the request parameters."
    )


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
