"""One audited rollback against the raw MLflow requests it is made of.

Starts its own lab with MLflow (one model, own ports and state dir), then
alternates, in one process, rollbacks between two versions:

* ours: the whole action path as the CLI runs it, minus the SLI watch: plan
  (read the alias, both versions), intent written and fsynced to the audit log,
  check the alias again, set it, read it back, result written and fsynced;
* raw: the three MLflow calls a script would make (read the alias, set it, read
  it back) with ``httpx.AsyncClient``, with no plan, no check and no audit.

It prints the medians and their ratio; only the ratio is meant to travel. The
gap is the price of the plan's detail and of two durable audit writes.

    python bench/action.py [--runs 15]
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

from console.actions.executor import Executor, Outcome
from console.actions.kinds import build_action
from console.config.loader import load_config
from console.config.models import StoreConfig
from console.session import open_session_sync
from lab import control
from lab.configs import Ports

MODEL = "fraud-detector"
API = "/api/2.0/mlflow"


async def measure(config_path: Path, store: Path, runs: int) -> None:
    config = load_config(config_path).model_copy(update={"store": StoreConfig(path=store)})
    space = open_session_sync(config, actor="bench@local")
    url = config.sources["registry"].url
    try:
        async with httpx.AsyncClient(base_url=f"{url}{API}", timeout=30) as client:

            async def raw(version: str) -> None:
                params = {"name": MODEL, "alias": "champion"}
                (await client.get("/registered-models/alias", params=params)).raise_for_status()
                body = {"name": MODEL, "alias": "champion", "version": version}
                (await client.post("/registered-models/alias", json=body)).raise_for_status()
                (await client.get("/registered-models/alias", params=params)).raise_for_status()

            async def ours(version: str) -> None:
                action = build_action(space.ctx, "rollback", {"model": MODEL, "to": version})
                plan = await action.plan()
                report = await Executor(space.ctx, space.audit).run(action, plan)
                assert report.outcome is Outcome.APPLIED and report.confirmed, report.message

            await ours("2")  # warm both paths
            await raw("3")
            ours_s, raw_s = [], []
            for index in range(runs):
                target = "2" if index % 2 == 0 else "3"
                start = time.perf_counter()
                await ours(target)
                ours_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                await raw("3" if target == "2" else "2")
                raw_s.append(time.perf_counter() - start)
                await raw(target)  # put it back where the next "ours" expects it
        entries = len(space.audit.entries())
        ok = space.audit.verify().ok
    finally:
        space.owns_adapters = True
        await space.close()
    ours_m, raw_m = statistics.median(ours_s), statistics.median(raw_s)
    print(f"{runs} rollbacks each way; audit log: {entries} entries, chain intact: {ok}")
    print(f"raw httpx (get, set, get alias):       median {raw_m * 1000:.1f} ms")
    print(f"mlconsole audited rollback (no watch): median {ours_m * 1000:.1f} ms")
    print(f"ratio ours / raw: {ours_m / raw_m:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--base-port", type=int, default=38090)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlconsole-bench-") as tmp:
        base = args.base_port
        ports = Ports(base, base + 3, base + 10, base + 410)
        print("starting a lab with MLflow ...", file=sys.stderr)
        info = control.up(Path(tmp), models=1, ports=ports, timeout=120)
        try:
            asyncio.run(measure(info.config_path, Path(tmp) / "bench-store.db", args.runs))
        finally:
            control.down(Path(tmp))


if __name__ == "__main__":
    main()
