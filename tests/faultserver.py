"""A tiny local HTTP server that answers with whatever a test scripts: 500s, garbage, hangs.

Used for fault injection against adapters built on requests (which respx
cannot intercept). It is a real socket on 127.0.0.1, so the adapter's whole
HTTP stack, retries included, is exercised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class FaultServer:
    replies: list[Reply] = field(default_factory=list)
    """Served in order; the last one repeats."""
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


@contextmanager
def fault_server(*replies: Reply) -> Iterator[FaultServer]:
    state = FaultServer(list(replies))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            state.requests.append(self.path)
            reply = state.next_reply()
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
