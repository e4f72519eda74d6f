"""One full snapshot refresh against raw httpx requests for the same PromQL.

Starts its own lab (``--models`` models, own ports and state dir), waits until
the recording rules answer for every model, then alternates, in one process:

* ours: ``Poller.refresh("prometheus")``: every SLI query through the
  Prometheus adapter (prometheus-api-client in worker threads), judging each
  value, burn rates, history, and building the immutable snapshot;
* raw: the same PromQL strings sent at once with ``httpx.AsyncClient`` and
  parsed with ``json``, nothing else.

It prints the medians and their ratio; only the ratio is meant to travel.

    python bench/refresh.py [--models 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from console.config_loader import load_config
from console.poller import Poller, build_adapters, sli_queries
from lab import control
from lab.configs import Ports


async def wait_for_models(url: str, query: str, models: int, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            body = (await client.get("/api/v1/query", params={"query": query})).json()
            if len(body["data"]["result"]) >= models:
                return
            await asyncio.sleep(1)
    raise SystemExit(f"recording rule {query} never covered {models} models")


async def measure(config_path: Path, models: int, runs: int) -> None:
    config = load_config(config_path)
    queries = sli_queries(config.slis)
    url = config.sources["prometheus"].url
    print(f"waiting for {models} models in every SLI ...", file=sys.stderr)
    deadline = time.monotonic() + 180
    for query in queries:
        await wait_for_models(url, query, models, deadline)

    adapters, _ = build_adapters(config)
    poller = Poller(config, {"prometheus": adapters["prometheus"]})
    await poller.refresh("prometheus")  # seeds history once, as the console does at start

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def raw() -> int:
            responses = await asyncio.gather(
                *(client.get("/api/v1/query", params={"query": q}) for q in queries)
            )
            return sum(len(r.json()["data"]["result"]) for r in responses)

        await raw()
        ours_s, raw_s = [], []
        for _ in range(runs):
            start = time.perf_counter()
            series = await raw()
            raw_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            await poller.refresh("prometheus")
            ours_s.append(time.perf_counter() - start)
    readings = len(poller.snapshot.readings)
    await poller.stop()
    ours, rawm = statistics.median(ours_s), statistics.median(raw_s)
    print(f"{len(queries)} PromQL queries, {series} series, {readings} SLI readings, {runs} runs")
    print(f"raw httpx + json:            median {rawm * 1000:.1f} ms")
    print(f"mlconsole snapshot refresh:  median {ours * 1000:.1f} ms")
    print(f"ratio refresh / raw: {ours / rawm:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base-port", type=int, default=39090)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlconsole-bench-") as tmp:
        ports = Ports(args.base_port, args.base_port + 3, args.base_port + 10)
        print(f"starting a lab with {args.models} models ...", file=sys.stderr)
        # No MLflow: registering a thousand models would measure the registry, not this.
        info = control.up(Path(tmp), models=args.models, ports=ports, timeout=120, registry=False)
        try:
            asyncio.run(measure(info.config_path, args.models, args.runs))
        finally:
            control.down(Path(tmp))


if __name__ == "__main__":
    main()
