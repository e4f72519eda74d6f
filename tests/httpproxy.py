"""A small HTTP proxy in front of a real server, for fault injection in the middle.

Requests pass through to the real server unless a rule says otherwise:

- ``forward``: pass through (the default);
- ``hold``: pass through, then never answer (the change happened; the caller
  hangs as if the network died before the response came back);
- ``stall``: never pass through and never answer;
- ``503``: answer 503 without passing through;
- ``drop``: close the connection without passing through or answering;
- ``echo``: answer 503 with the request's headers in the body, as a badly behaved
  server might (to prove secrets never travel on from an error).

So a test can kill a process mid-request, or fail one request of a real flow,
while everything else talks to the real server.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

Rule = Callable[[str, str], str]


class FaultProxy:
    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule: Rule = rule or (lambda method, path: "forward")
        self.seen: list[tuple[str, str, str]] = []
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                verdict = proxy.rule(self.command, self.path)
                proxy.seen.append((self.command, self.path, verdict))
                if verdict == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                if verdict == "stall":
                    proxy.release.wait()
                    self.close_connection = True
                    return
                if verdict == "echo":
                    payload = json.dumps({"message": "injected", "headers": dict(self.headers)})
                    data = payload.encode()
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if verdict == "503":
                    payload = b'{"error_code":"TEMPORARILY_UNAVAILABLE","message":"injected"}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                conn.close()
                if verdict == "hold":
                    proxy.release.wait()
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
