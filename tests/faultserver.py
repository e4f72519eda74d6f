"""A tiny local HTTP server that answers with whatever a test scripts: 500s, garbage, hangs.

Used for fault injection against adapters that make their requests in threads of
their own, with a blocking client (which respx, bound to one transport, is not
meant to stand in for). It is a real socket on 127.0.0.1, so the adapter's whole
HTTP stack, retries included, is exercised.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    content_type: str = "application/json"
    echo: bool = False
    """Answer with an error that echoes the request's credentials (``Authorization``
    and ``X-Api-Key``) in every form a careless server might: as sent, repr'd,
    JSON-escaped, URL-encoded and, for Basic auth, decoded. Its JSON fits
    Prometheus (``error``), Alertmanager and MLflow (``message``)."""
    error_type: str = "internal"
    """The ``errorType`` of an echo (``bad_data`` with a 400: a query that does not parse)."""
    headers: dict[str, str] = field(default_factory=dict)
    """More response headers (``Location`` for a redirect)."""


def echo_body(headers: Mapping[str, str], error_type: str = "internal") -> bytes:
    parts = []
    for name in ("Authorization", "X-Api-Key"):
        value = headers.get(name)
        if value is None:
            continue
        parts += [f"{name}: {value}", repr(value), json.dumps(value), quote(value, safe="")]
        scheme, _, token = value.partition(" ")
        if scheme == "Basic":
            parts.append(base64.b64decode(token).decode(errors="replace"))
    echoed = " | ".join(parts)
    return json.dumps(
        {"status": "error", "errorType": error_type, "error": echoed, "message": echoed}
    ).encode()


@dataclass
class FaultServer:
    replies: list[Reply] = field(default_factory=list)
    """Served in order; the last one repeats."""
    requests: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    """Each request's method, in the order of :attr:`requests`."""
    bodies: list[bytes] = field(default_factory=list)
    """Each request's body (empty when it had none), in the same order."""
    url: str = ""

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@contextmanager
def fault_server(*replies: Reply) -> Iterator[FaultServer]:
    state = FaultServer(list(replies))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            state.bodies.append(self.rfile.read(length) if length else b"")
            state.methods.append(self.command)
            state.requests.append(self.path)
            reply = state.next_reply()
            if reply.delay:
                time.sleep(reply.delay)
            body = echo_body(self.headers, reply.error_type) if reply.echo else reply.body
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as state.url:
        yield state


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` on a real socket on 127.0.0.1, each request in a daemon thread: the
    base URL. Leaving stops the server without waiting for a request still held."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
