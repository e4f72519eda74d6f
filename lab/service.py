"""The lab's model service: simulated traffic exported as Prometheus metrics.

Run it as ``python -m lab.service --host 127.0.0.1 --port P --models N --state-dir DIR
[--registry MLFLOW_URL]``.

With ``--registry``, each model serves the version its ``champion`` alias names in
MLflow (polled every second), behaving as that version's ``lab.*`` tags say; while
MLflow cannot be reached, the last known versions keep serving. Without it, versions
change only through the ``bad-deploy`` fault.

Endpoints (JSON unless noted; errors are ``{"error": MESSAGE}``):

* ``GET /metrics``: Prometheus text exposition of the simulation.
* ``GET /-/ready``: 200 once the first tick has run (text).
* ``GET /admin/state``: models, what each serves (version, fallback, paused), the
  active faults and the registry's state.
* ``POST /admin/fault`` ``{"fault": NAME, "model": MODEL}``: inject a fault. With a
  registry, ``bad-deploy`` is only recorded here: the deploy is the alias move.
* ``POST /admin/reset`` ``{}``: clear every fault, turn fallbacks off, resume pipelines.
* ``GET /admin/fallback?model=M``, ``POST /admin/fallback`` ``{"model": M, "enabled":
  BOOL}``: read or set M's rule-based fallback; answers ``{"model": M, "enabled": BOOL}``.
* ``GET /admin/pipeline?model=M``, ``POST /admin/pipeline`` ``{"model": M, "paused":
  BOOL}``: read or set whether M's retraining pipeline is held; answers ``{"model": M,
  "paused": BOOL}``.

An unknown model is a 404, a malformed request a 400.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.catalog import CHAMPION_ALIAS, DEFAULT_MODELS, DEFAULT_SERVICE_PORT, HOST, model_names
from lab.exposition import CONTENT_TYPE
from lab.lab_service import SWITCHES, LabService
from lab.simulation import UnknownFaultError, UnknownModelError

log = logging.getLogger("lab.service")

#: Admin requests are tiny; anything bigger is a mistake or abuse.
MAX_BODY_BYTES = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    """HTTP front of a :class:`LabService` (set as the ``service`` class attribute)."""

    # Keep-alive lets Prometheus reuse one connection for its per-second scrapes.
    protocol_version = "HTTP/1.1"
    server_version = "mlconsole-lab"
    service: LabService

    def log_message(self, format: str, *args: Any) -> None:
        # One line per scrape would drown the log; admin calls are logged by the service.
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path in SWITCHES:
            models = urllib.parse.parse_qs(query).get("model", [])
            if len(models) != 1:
                self._error(HTTPStatus.BAD_REQUEST, f"expected {path}?model=MODEL")
                return
            try:
                on = self.service.switch(path, models[0])
            except UnknownModelError as exc:
                self._error(HTTPStatus.NOT_FOUND, str(exc))
                return
            self._json(HTTPStatus.OK, {"model": models[0], SWITCHES[path]: on})
        elif path == "/metrics":
            self._send(HTTPStatus.OK, self.service.metrics(), CONTENT_TYPE)
        elif path in ("/-/ready", "/-/healthy"):
            if self.service.ready:
                self._send(HTTPStatus.OK, b"ready\n", "text/plain")
            else:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"starting\n", "text/plain")
        elif path == "/admin/state":
            self._json(HTTPStatus.OK, self.service.state())
        elif path == "/":
            self._send(HTTPStatus.OK, (__doc__ or "").encode(), "text/plain; charset=utf-8")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in ("/admin/fault", "/admin/reset", *SWITCHES):
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
            return
        body = self._read_json()
        if body is None:
            return
        if path in SWITCHES:
            self._post_switch(path, body)
            return
        if path == "/admin/reset":
            self.service.reset()
            self._json(HTTPStatus.OK, self.service.state())
            return
        fault, model = body.get("fault"), body.get("model")
        if not isinstance(fault, str) or not isinstance(model, str):
            self._error(HTTPStatus.BAD_REQUEST, 'expected {"fault": NAME, "model": MODEL}')
            return
        try:
            self.service.inject(fault, model)
        except (UnknownFaultError, UnknownModelError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        self._json(HTTPStatus.OK, self.service.state())

    def _post_switch(self, path: str, body: dict[str, Any]) -> None:
        field = SWITCHES[path]
        model, on = body.get("model"), body.get(field)
        if not isinstance(model, str) or not isinstance(on, bool):
            expected = f'expected {{"model": MODEL, "{field}": true|false}}'
            self._error(HTTPStatus.BAD_REQUEST, expected)
            return
        try:
            self.service.set_switch(path, model, on)
        except UnknownModelError as exc:
            self._error(HTTPStatus.NOT_FOUND, str(exc))
            return
        self._json(HTTPStatus.OK, {"model": model, field: on})

    def _read_json(self) -> dict[str, Any] | None:
        """The request's JSON object body, or None after answering with an error."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._error(HTTPStatus.BAD_REQUEST, "missing or oversized request body")
            return None
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "request body is not valid JSON")
            return None
        if not isinstance(body, dict):
            self._error(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
            return None
        return body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response (a cancelled scrape, curl | head) is routine.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("error while serving %s", client_address)


def make_server(service: LabService, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server bound to ``host:port`` that serves ``service``."""
    handler = type("Handler", (_Handler,), {"service": service})
    return _Server((host, port), handler)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lab.service", description="The mlconsole lab's simulated model service."
    )
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_SERVICE_PORT)
    parser.add_argument("--models", type=int, default=DEFAULT_MODELS)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where to append the journal of faults, deploys and switches (faults.jsonl)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible traffic")
    parser.add_argument(
        "--registry",
        metavar="URL",
        default=None,
        help=f"MLflow to follow: each model serves the version its {CHAMPION_ALIAS!r} alias names",
    )
    args = parser.parse_args(argv)
    if args.models < 1:
        parser.error("--models must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM or SIGINT."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.state_dir is not None:
        args.state_dir.mkdir(parents=True, exist_ok=True)
    service = LabService(
        model_names(args.models), args.state_dir, seed=args.seed, registry=args.registry
    )
    try:
        server = make_server(service, args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc)
        return 1

    def _shutdown(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        # shutdown() waits for serve_forever() to return, which runs in this very
        # thread, so it must be called from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    service.start()
    log.info("serving %d models on http://%s:%d/metrics", args.models, args.host, args.port)
    if args.registry:
        log.info("following the %r alias in %s", CHAMPION_ALIAS, args.registry)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        service.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
