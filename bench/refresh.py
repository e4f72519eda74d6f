"""One full snapshot refresh against raw httpx requests for the same PromQL.

Two modes, each alternating in one process, so the ratio holds on a noisy machine:

* ``replay`` (the default): the answers of a 1,000-model refresh are served from an
  in-process HTTP server, so Prometheus' own time is left out and what remains is
  the console's work. The answers are synthesized in the shape the lab's recording
  rules give (``{__name__, model}`` labels, ``[ts, "value"]`` samples), or taken
  from a refresh recorded with ``live --record FILE`` (``--answers FILE``). Each
  round moves every timestamp on by the refresh interval and changes the values of
  ``--changing`` of the series (all, by default: the worst case, a busy fleet), so
  nothing is served twice. CPU (``time.process_time()``, every thread) is the
  measure; wall time is printed beside it. The server's own CPU (measured in its
  threads) is taken off both sides for the client-only ratio. No collection is
  forced between the sides: the garbage collector runs where the allocations make
  it run, as in the console, so the means (which count its full collections, where
  the medians may skip them) are printed too.
* ``live``: starts its own lab (``--models`` models, own ports and state dir), waits
  until the recording rules answer for every model, and compares wall times.

Each side of a round:

* ours: ``Poller.refresh("prometheus")``: every SLI query through the Prometheus
  adapter (httpx and orjson in worker threads), judging each value, burn rates,
  history, and building the immutable snapshot;
* raw: the same PromQL strings sent at once with ``httpx.AsyncClient`` and parsed
  with ``json``, nothing else.

It prints the medians and their ratios; only the ratios are meant to travel.

    python bench/refresh.py [replay] [--models 1000] [--runs 15] [--changing 1.0]
    python bench/refresh.py live [--models 1000] [--runs 15] [--record FILE] [--config PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from console.config.loader import load_config
from console.config.models import Config
from console.sources.build import build_adapters
from console.sources.poller import Poller, sli_queries
from lab import control
from lab.catalog import model_names
from lab.configs import Ports, mlconsole_config

#: Seconds between two refreshes of the lab's config: each replayed round is this later.
ROUND_SECONDS = 2.0


# -- the answers ---------------------------------------------------------------------


def synthesized(queries: list[str], models: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """One refresh's answers in the lab's shape: per query, ``(labels, value)`` per model."""
    names = model_names(models)
    return {
        q: [
            ({"__name__": q, "model": m}, 0.05 + 0.9 * ((n * 7919 + k * 104729) % 1000) / 1000)
            for n, m in enumerate(names)
        ]
        for k, q in enumerate(queries)
    }


def recorded(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The answers of a refresh written by ``live --record``."""
    bodies = json.loads(path.read_text(encoding="utf-8"))
    return {
        q: [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]
        for q, body in bodies.items()
    }


class Answers:
    """Encoded answers for each round: every timestamp ``ROUND_SECONDS`` later, and
    the values of ``changing`` of the series moved."""

    def __init__(
        self, base: dict[str, list[tuple[dict[str, str], float]]], changing: float, start: float
    ) -> None:
        self.base = base
        self.changing = changing
        self.start = start
        self.round = 0
        self._bodies: dict[str, bytes] = {}
        self.prepare(0)

    def prepare(self, round_: int) -> None:
        """Encode round ``round_``'s answers (before it is timed)."""
        self.round = round_
        ts = self.start + round_ * ROUND_SECONDS
        bodies = {}
        for q, rows in self.base.items():
            result = []
            for n, (labels, value) in enumerate(rows):
                if (n % 1000) < self.changing * 1000:
                    value = value * (1 + 0.05 * math.sin(round_ + n))
                result.append({"metric": labels, "value": [ts, repr(value)]})
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
            bodies[q] = json.dumps(body, separators=(",", ":")).encode()
        self._bodies = bodies

    def instant(self, query: str) -> bytes:
        return self._bodies[query]

    def range(self, query: str, start: float, end: float, step: float) -> bytes:
        """The history seed: one series per model, at the round-0 values."""
        points = max(1, int((end - start) / step))
        result = [
            {
                "metric": labels,
                "values": [[end - (points - i) * step, repr(value)] for i in range(points)],
            }
            for labels, value in self.base.get(query, ())
        ]
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        return json.dumps(body, separators=(",", ":")).encode()


class ReplayServer:
    """Serves :class:`Answers` on 127.0.0.1 (keep-alive), counting its own CPU."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.cpu = 0.0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                started = time.thread_time()
                parts = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/api/v1/query":
                    body = outer.answers.instant(params["query"])
                else:
                    body = outer.answers.range(
                        params["query"],
                        float(params["start"]),
                        float(params["end"]),
                        float(params["step"]),
                    )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with outer._lock:
                    outer.cpu += time.thread_time() - started

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the two sides -------------------------------------------------------------------


def raw_client(url: str, queries: list[str]) -> tuple[httpx.AsyncClient, Callable[[], Any]]:
    client = httpx.AsyncClient(base_url=url, timeout=30)

    async def raw() -> int:
        responses = await asyncio.gather(
            *(client.get("/api/v1/query", params={"query": q}) for q in queries)
        )
        return sum(len(json.loads(r.content)["data"]["result"]) for r in responses)

    return client, raw


class Timings:
    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.server: list[float] = []

    def median(self, which: str) -> float:
        return statistics.median(getattr(self, which))

    def mean(self, which: str) -> float:
        return statistics.mean(getattr(self, which))

    def client(self) -> float:
        return statistics.median(c - s for c, s in zip(self.cpu, self.server, strict=True))


async def timed(call: Callable[[], Awaitable[Any]], into: Timings, server: ReplayServer | None):
    before_server = server.cpu if server else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    await call()
    into.wall.append(time.perf_counter() - wall)
    into.cpu.append(time.process_time() - cpu)
    into.server.append((server.cpu if server else 0.0) - before_server)


def report(queries: int, series: int, poller: Poller, runs: int) -> None:
    readings = len(poller.snapshot.readings)
    print(f"{queries} PromQL queries, {series} series, {readings} SLI readings, {runs} runs")


def ratio_line(label: str, ours: float, raw: float, unit: float = 1000, suffix: str = "ms") -> str:
    return (
        f"{label:<28} raw {raw * unit:8.1f} {suffix}   ours {ours * unit:8.1f} {suffix}"
        f"   ratio {ours / raw:.2f}x"
    )


# -- replay --------------------------------------------------------------------------


def lab_config(tmp: Path, prometheus_url: str) -> Config:
    """The lab's own console config (no registry), reading from ``prometheus_url``."""
    port = int(urlsplit(prometheus_url).port or 0)
    path = tmp / "mlconsole.yaml"
    path.write_text(mlconsole_config(Ports(port, port, port), tmp, registry=False))
    return load_config(path)


async def replay(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="mlconsole-bench-") as tmp:
        placeholder = lab_config(Path(tmp), "http://127.0.0.1:9")
        queries = sli_queries(placeholder.slis)
        base = recorded(args.answers) if args.answers else synthesized(queries, args.models)
        answers = Answers(base, args.changing, time.time() - args.runs * 4 * ROUND_SECONDS)
        with ReplayServer(answers) as server:
            config = lab_config(Path(tmp), server.url)
            adapters, _ = build_adapters(config)
            poller = Poller(
                config,
                {"prometheus": adapters["prometheus"]},
                clock=lambda: answers.start + answers.round * ROUND_SECONDS,
            )
            await poller.refresh("prometheus")  # seeds history once, as the console does
            client, raw = raw_client(server.url, queries)
            series = await raw()
            ours_t, raw_t = Timings(), Timings()
            round_ = 1
            for run in range(args.runs):
                sides = [(raw, raw_t), (lambda: poller.refresh("prometheus"), ours_t)]
                for call, into in sides if run % 2 == 0 else sides[::-1]:
                    answers.prepare(round_)
                    round_ += 1
                    await timed(call, into, server)
            await client.aclose()
            await poller.stop()
    report(len(queries), series, poller, args.runs)
    print(
        f"answers: {'recorded' if args.answers else 'synthesized'}, "
        f"{args.changing:.0%} of the values change each round"
    )
    print(ratio_line("CPU, whole process:", ours_t.median("cpu"), raw_t.median("cpu")))
    print(ratio_line("CPU, less the server's:", ours_t.client(), raw_t.client()))
    print(ratio_line("CPU, mean:", ours_t.mean("cpu"), raw_t.mean("cpu")))
    print(ratio_line("wall:", ours_t.median("wall"), raw_t.median("wall")))
    print(f"refresh CPU / raw CPU (medians): {ours_t.median('cpu') / raw_t.median('cpu'):.2f}x")


# -- live ----------------------------------------------------------------------------


async def wait_for_models(url: str, query: str, models: int, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            body = (await client.get("/api/v1/query", params={"query": query})).json()
            if len(body["data"]["result"]) >= models:
                return
            await asyncio.sleep(1)
    raise SystemExit(f"recording rule {query} never covered {models} models")


async def measure(config_path: Path, models: int, runs: int, record: Path | None = None) -> None:
    """The live comparison against a lab that is up (bench/scale.py calls it too)."""
    config = load_config(config_path)
    queries = sli_queries(config.slis)
    url = config.sources["prometheus"].url
    print(f"waiting for {models} models in every SLI ...", file=sys.stderr)
    deadline = time.monotonic() + 180
    for query in queries:
        await wait_for_models(url, query, models, deadline)
    if record:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            bodies = {
                q: (await client.get("/api/v1/query", params={"query": q})).json() for q in queries
            }
        record.write_text(json.dumps(bodies), encoding="utf-8")
        print(f"recorded one refresh's answers in {record}", file=sys.stderr)

    adapters, _ = build_adapters(config)
    poller = Poller(config, {"prometheus": adapters["prometheus"]})
    await poller.refresh("prometheus")  # seeds history once, as the console does at start
    client, raw = raw_client(url, queries)
    series = await raw()
    ours_t, raw_t = Timings(), Timings()
    for run in range(runs):
        sides = [(raw, raw_t), (lambda: poller.refresh("prometheus"), ours_t)]
        for call, into in sides if run % 2 == 0 else sides[::-1]:
            await timed(call, into, None)
    await client.aclose()
    await poller.stop()
    report(len(queries), series, poller, runs)
    print(ratio_line("wall:", ours_t.median("wall"), raw_t.median("wall")))
    print(ratio_line("CPU, whole process:", ours_t.median("cpu"), raw_t.median("cpu")))
    print(f"refresh wall / raw wall: {ours_t.median('wall') / raw_t.median('wall'):.2f}x")


def live(args: argparse.Namespace) -> None:
    if args.config:  # a lab that is already up (`mlconsole lab up --models N --no-registry`)
        asyncio.run(measure(args.config, args.models, args.runs, args.record))
        return
    with tempfile.TemporaryDirectory(prefix="mlconsole-bench-") as tmp:
        ports = Ports(args.base_port, args.base_port + 3, args.base_port + 10)
        print(f"starting a lab with {args.models} models ...", file=sys.stderr)
        # No MLflow: registering a thousand models would measure the registry, not this.
        info = control.up(Path(tmp), models=args.models, ports=ports, timeout=120, registry=False)
        try:
            asyncio.run(measure(info.config_path, args.models, args.runs, args.record))
        finally:
            control.down(Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("replay", "live"), default="replay")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base-port", type=int, default=39090, help="live: the lab's ports")
    parser.add_argument("--record", type=Path, help="live: write one refresh's answers here")
    parser.add_argument("--config", type=Path, help="live: the config of a lab already up")
    parser.add_argument("--answers", type=Path, help="replay: a refresh written by --record")
    parser.add_argument(
        "--changing", type=float, default=1.0, help="replay: share of values that change"
    )
    args = parser.parse_args()
    if args.mode == "live":
        live(args)
    else:
        asyncio.run(replay(args))


if __name__ == "__main__":
    main()
