"""Hand-written HTTP requests for tests of upload limits (a lying Content-Length, a huge
chunked body) that a well-behaved client library would refuse to send."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


def host_of(server: Any) -> str:
    """The ``Host`` header value the server accepts (it refuses foreign names with 421)."""
    return str(server.url.split("://", 1)[1])


def raw_request(server: Any, head: str, body: bytes = b"") -> str:
    """Send ``head`` + ``body``; the first reply bytes (the server may answer mid-upload)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server may close once it has answered
                s.sendall(head.encode() + body)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        reply = b""
        while b"}}" not in reply and (part := s.recv(4096)):  # the JSON error body ends so
            reply += part
        s.shutdown(socket.SHUT_RDWR)
        sender.join(10)
        return reply.decode(errors="replace")
