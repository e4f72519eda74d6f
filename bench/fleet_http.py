"""The fleet's HTTP side: its server, and the handler that answers the console's
Prometheus and Alertmanager requests from the :class:`bench.fleet.Fleet` it serves."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.fleet import Fleet


class FleetServer(ThreadingHTTPServer):
    """The fleet's HTTP server: a console that quits with a request in flight resets
    its connection, which is not the fleet's error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FleetHandler(BaseHTTPRequestHandler):
    owner: Fleet
    protocol_version = "HTTP/1.1"  # keep-alive, as the console's clients expect

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, status: int = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the console quit mid-answer
            self.wfile.write(body)

    def _params(self) -> dict[str, str]:
        query = urllib.parse.urlsplit(self.path).query
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            if self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                query = f"{query}&{raw}" if query else raw
            elif raw:
                self._body = raw
        return {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def _answer(self) -> None:
        fleet = self.owner
        fleet.requests += 1
        self._body = ""
        path = urllib.parse.urlsplit(self.path).path
        params = self._params()
        now = time.time()
        if path == "/api/v1/query":
            self._send(fleet.instant(params.get("query", ""), float(params.get("time") or now)))
        elif path == "/api/v1/query_range":
            self._send(
                fleet.range(
                    params.get("query", ""),
                    float(params.get("start") or now),
                    float(params.get("end") or now),
                    float(params.get("step") or 1),
                )
            )
        elif path == "/api/v1/format_query":
            data = {"status": "success", "data": params.get("query", "")}
            self._send(json.dumps(data).encode())
        elif path in ("/-/ready", "/-/healthy"):
            self._send(b"ready\n")
        elif path == "/api/v2/alerts" and self.command == "GET":
            self._send(fleet._alerts_json)
        elif path == "/api/v2/alerts":  # posted alerts are taken and dropped
            self._send(b"")
        elif path == "/api/v2/silences" and self.command == "POST":
            silence = json.loads(self._body or "{}")
            silence["id"] = hashlib.sha1(self._body.encode(), usedforsecurity=False).hexdigest()
            silence["status"] = {"state": "active"}
            fleet._silences.append(silence)
            self._send(json.dumps({"silenceID": silence["id"]}).encode())
        elif path == "/api/v2/silences":
            self._send(json.dumps(fleet._silences).encode())
        elif path.startswith("/api/v2/silence/"):
            self._send(b"")
        elif path == "/api/v2/status":
            status = {
                "cluster": {"status": "disabled", "peers": []},
                "versionInfo": {"version": "fleet"},
                "config": {"original": ""},
                "uptime": datetime.now(UTC).isoformat(),
            }
            self._send(json.dumps(status).encode())
        elif path == "/-/fleet/fire":
            fleet.fire(int(params.get("count", "0")))
            self._send(json.dumps({"firing": fleet.firing}).encode())
        elif path == "/-/fleet/clear":
            fleet.clear()
            self._send(json.dumps({"firing": 0}).encode())
        elif path == "/admin/state":
            serving = {
                m: {"version": "1", "fallback": False, "paused": False} for m in fleet.models
            }
            self._send(json.dumps({"models": fleet.models, "serving": serving}).encode())
        elif path in ("/admin/fallback", "/admin/pipeline"):
            field = "enabled" if path == "/admin/fallback" else "paused"
            model = params.get("model") or json.loads(self._body or "{}").get("model", "")
            self._send(json.dumps({"model": model, field: False}).encode())
        else:
            self._send(json.dumps({"error": f"no such endpoint: {path}"}).encode(), 404)
