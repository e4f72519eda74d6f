"""The lab's model service: simulated traffic exported as Prometheus metrics.

Run it as ``python -m lab.service --host 127.0.0.1 --port P --models N --state-dir DIR``.

Endpoints:

* ``GET /metrics``: Prometheus text exposition of the simulation.
* ``GET /-/ready``: 200 once the first tick has run.
* ``GET /admin/state``: models, their served versions and the active faults (JSON).
* ``POST /admin/fault`` ``{"fault": NAME, "model": MODEL}``: inject a fault.
* ``POST /admin/reset`` ``{}``: clear every fault.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lab.catalog import DEFAULT_MODELS, DEFAULT_SERVICE_PORT, FAULTS, HOST, model_names
from lab.exposition import CONTENT_TYPE, Exposition
from lab.simulation import Simulation, UnknownFaultError, UnknownModelError

log = logging.getLogger("lab.service")

#: Admin requests are tiny; anything bigger is a mistake or abuse.
MAX_BODY_BYTES = 64 * 1024
TICK_SECONDS = 1.0


class LabService:
    """The simulation, its background ticker and its cached exposition."""

    def __init__(self, models: list[str], state_dir: Path | None, seed: int | None = None) -> None:
        self.sim = Simulation(models, start=time.time(), seed=seed)
        self.exposition = Exposition(self.sim)
        self.state_dir = state_dir
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._cache: tuple[int, bytes] = (-1, b"")
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)

    def start(self) -> None:
        """Run the first tick, then keep ticking in the background."""
        self.tick()
        self._ready.set()
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()

    @property
    def ready(self) -> bool:
        """Whether there is data to serve."""
        return self._ready.is_set()

    def tick(self) -> None:
        """Advance the simulation to now."""
        with self.lock:
            self.sim.step(time.time())

    def _run(self) -> None:
        # Ticks follow a fixed monotonic schedule; a late tick is not made up for,
        # since the simulation stamps each tick with the real time anyway.
        next_at = time.monotonic() + TICK_SECONDS
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.tick()
            except Exception:  # keep serving even if one tick goes wrong
                log.exception("simulation tick failed")
            next_at += TICK_SECONDS
            now = time.monotonic()
            if next_at < now:
                next_at = now + TICK_SECONDS

    def metrics(self) -> bytes:
        """The exposition of the latest tick, rendered at most once per tick."""
        with self.lock:
            ticks = self.sim.ticks
            if self._cache[0] != ticks:
                self._cache = (ticks, self.exposition.render())
            return self._cache[1]

    def state(self) -> dict[str, Any]:
        """Models, served versions and active faults."""
        with self.lock:
            return {
                "models": self.sim.model_names,
                "versions": {m.name: m.version for m in self.sim.models},
                "faults": self.sim.active_faults(),
                "available_faults": dict(FAULTS),
                "ticks": self.sim.ticks,
            }

    def inject(self, fault: str, model: str) -> None:
        """Inject ``fault`` into ``model``; raises ValueError for unknown names."""
        with self.lock:
            self.sim.inject(fault, model, now=time.time())
        log.info("fault injected: %s on %s", fault, model)
        self._journal({"event": "inject", "fault": fault, "model": model})

    def reset(self) -> None:
        """Clear every fault."""
        with self.lock:
            self.sim.reset()
        log.info("all faults cleared")
        self._journal({"event": "reset"})

    def _journal(self, record: dict[str, Any]) -> None:
        # The journal tells later readers what was injected when, even after the lab
        # is gone; losing it must never break the admin API.
        if self.state_dir is None:
            return
        record = {"ts": time.time(), **record}
        try:
            with (self.state_dir / "faults.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as exc:
            log.warning("cannot write the fault journal: %s", exc)


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
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
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
        if path not in ("/admin/fault", "/admin/reset"):
            self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {path}")
            return
        body = self._read_json()
        if body is None:
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
        help="where to append the fault journal (faults.jsonl)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible traffic")
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
    service = LabService(model_names(args.models), args.state_dir, seed=args.seed)
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
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        service.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
