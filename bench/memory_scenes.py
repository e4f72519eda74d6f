"""The scenes bench/memory.py puts the console in: alerts posted to the lab's
Alertmanager and kept firing, and the waits on the app (connected, first breaches
read, a phase held)."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

ALERT = "ModelErrorBudgetBurn"


def alert_body(model: str, *, ends_in: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": ALERT, "model": model, "severity": "page", "sli": "error_ratio"},
        "annotations": {
            "summary": f"{model} is burning its error budget (memory bench)",
            "runbook": "model-regression",
        },
        "startsAt": (now - timedelta(seconds=1)).isoformat(),
        "endsAt": (now + timedelta(seconds=ends_in)).isoformat(),
    }


class Alerts:
    """Alerts posted straight to the lab's Alertmanager, as its rules would."""

    def __init__(self, url: str, models: list[str]) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)
        self.models = models
        self.firing: list[str] = []

    async def post(self, models: list[str], *, ends_in: float) -> None:
        body = [alert_body(m, ends_in=ends_in) for m in models]
        (await self.client.post("/api/v2/alerts", json=body)).raise_for_status()

    async def fire(self, models: list[str]) -> None:
        self.firing = models
        await self.post(models, ends_in=600)

    async def keep(self) -> None:
        """Post the firing ones again, so Alertmanager never resolves them by itself."""
        await self.post(self.firing, ends_in=600)

    async def clear(self, models: list[str] | None = None) -> None:
        gone = self.firing if models is None else models
        await self.post(gone, ends_in=0)
        self.firing = [m for m in self.firing if m not in set(gone)]


async def hold(app: Any, alerts: Alerts | None, minutes: float) -> None:
    """Let the app refresh for ``minutes``, keeping the alerts firing."""
    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        await asyncio.sleep(min(30.0, max(0.0, end - time.monotonic())))
        if alerts is not None and alerts.firing:
            await alerts.keep()


async def connected(app: Any) -> Any:
    """The app's poller, once its sources are built (in a thread, at start)."""
    end = time.monotonic() + 120
    while app.poller is None:
        if time.monotonic() > end:
            raise SystemExit("the sources were not built within 120 s")
        await asyncio.sleep(0.1)
    return app.poller


def settle_minutes(config: Any) -> float:
    """Minutes for the sparklines' history to turn over (``ui.history``), and one more."""
    return float(config.ui.history) / 60 + 1


async def breaches_read(app: Any, limit: float) -> float:
    """Wait until the app has read the first breach of every incident it opened, up
    to ``limit`` seconds; return the seconds waited."""
    start = time.monotonic()
    while app.first_breaches_pending and time.monotonic() - start < limit:
        await asyncio.sleep(1.0)
    return time.monotonic() - start


def slope(samples: list[float]) -> float:
    """Least-squares MB per sample (per minute)."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(samples)
    top = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(samples))
    return top / sum((x - mean_x) ** 2 for x in range(n))
