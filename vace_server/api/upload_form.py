"""Streaming reader of an OSS PostObject-style `multipart/form-data` body.

Text fields come first and are small; the `file` part comes last. When the file part starts,
the caller's `open_file(fields)` checks the fields (and may refuse) and returns a sink; the
file's bytes then go to that sink chunk by chunk, so a body is never held in memory and a
refused or oversized upload stops as soon as it is seen. Fields after the file are ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Protocol

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from vace_server.errors import InvalidParameter

FIELD_MAX_BYTES = 16 * 1024
MAX_FIELDS = 32
FILE_FIELD = "file"

MALFORMED_FORM = "The request body must be multipart/form-data with a file field (PostObject)."


class FileSink(Protocol):
    def write(self, data: bytes) -> None: ...


OpenFile = Callable[[Mapping[str, str]], FileSink]


class BodyTooLarge(Exception):
    """The whole body exceeded its cap (whatever the parts say)."""


class _Reader:
    """python-multipart callbacks collecting text fields and queueing file data."""

    def __init__(self, open_file: OpenFile) -> None:
        self.fields: dict[str, str] = {}
        self.sink: FileSink | None = None
        self.file_done = False
        self.pending: list[bytes] = []
        self._open_file = open_file
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._part = "skip"  # "field" | "file" | "skip"
        self._name = ""
        self._data = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_cb,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }

    def _part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()
        self._part = "skip"

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_cb(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        _kind, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InvalidParameter(MALFORMED_FORM)
        self._name = raw_name.decode("utf-8", "replace").lower()
        if self.file_done or self.sink is not None:
            self._part = "skip"  # everything after the file is ignored
        elif self._name == FILE_FIELD:
            self.sink = self._open_file(self.fields)
            self._part = "file"
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidParameter(MALFORMED_FORM)
            self._part = "field"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self.pending.append(bytes(data[start:end]))
        elif self._part == "field":
            if len(self._data) + (end - start) > FIELD_MAX_BYTES:
                raise InvalidParameter(f"The form field {self._name} is too long.")
            self._data += data[start:end]

    def _part_end(self) -> None:
        if self._part == "file":
            self.file_done = True
        elif self._part == "field":
            self.fields[self._name] = self._data.decode("utf-8", "replace")
        self._part = "skip"


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary. Raises InvalidParameter for another content type."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidParameter(MALFORMED_FORM)
    return boundary


async def read_post_object(
    stream: AsyncIterator[bytes], content_type: str, open_file: OpenFile, *, max_body_bytes: int
) -> tuple[dict[str, str], bool]:
    """Parses the body, streaming the `file` part into the sink `open_file` returns.

    Returns: (text fields before the file, lower-cased names; whether a complete file part was
    read). Raises: InvalidParameter (not a well-formed form), BodyTooLarge, and whatever
    `open_file` or the sink raise (the sink is written from a worker thread)."""
    reader = _Reader(open_file)
    parser = MultipartParser(boundary_of(content_type), reader.callbacks())  # type: ignore[arg-type]
    total = 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > max_body_bytes:
                raise BodyTooLarge(f"body exceeds {max_body_bytes} bytes")
            parser.write(chunk)
            if reader.pending and reader.sink is not None:
                data = b"".join(reader.pending)
                reader.pending.clear()
                await run_in_threadpool(reader.sink.write, data)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidParameter(MALFORMED_FORM) from exc
    return reader.fields, reader.file_done
