"""How `serve` runs uvicorn: its own log records through our (JSON) root handler, and its h11
protocol with one change: a request it cannot parse (a broken request line, header or chunk
framing) is answered with a DashScope-shaped JSON 400 instead of uvicorn's plain-text one, so
that every response the server sends is JSON."""

from __future__ import annotations

import json
import uuid
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def invalid_request_body(message: str) -> bytes:
    body = {"code": "InvalidParameter", "message": message, "request_id": str(uuid.uuid4())}
    return json.dumps(body, separators=(",", ":")).encode()


class JsonErrorH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = invalid_request_body(msg)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def uvicorn_options() -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keywords besides the app, address and log level."""
    return {"log_config": None, "http": JsonErrorH11Protocol}
