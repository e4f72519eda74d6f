"""Record a snapshot of the running lab for the replay snapshot test.

    MLCONSOLE_CONFIG=... python -m tests.record_lab_snapshot tests/data/lab_bad_deploy.json

Run it with the lab up and a fault injected; the dashboard snapshot test then
replays the file through the live renderers with the clock frozen at its time.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from console.config.loader import load_config
from console.config.paths import find_config
from console.sources.build import build_adapters
from console.sources.poller import Poller


async def record(out: Path) -> None:
    path, _ = find_config(None)
    assert path is not None, "set MLCONSOLE_CONFIG to the lab's config"
    config = load_config(path)
    adapters, failures = build_adapters(config)
    poller = Poller(config, adapters, load_errors=failures)
    await poller.refresh_once()
    # Twice: switches are read for the models the first refresh found.
    snapshot = await poller.refresh_once()
    await poller.stop()
    out.write_text(json.dumps(snapshot.as_dict(snapshot.taken_at), indent=1) + "\n")


if __name__ == "__main__":
    asyncio.run(record(Path(sys.argv[1])))
