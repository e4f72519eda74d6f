"""What the lab's model service holds: the simulation, ticking in the background, the
registry it follows, its cached exposition, and the admin switches and faults, each
change written to a journal. :mod:`lab.service` serves it over HTTP."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from lab import web
from lab.catalog import CHAMPION_ALIAS, FAULTS
from lab.exposition import Exposition
from lab.registry import Follower
from lab.simulation import Simulation

# The service's log records keep the name of the module that runs it.
log = logging.getLogger("lab.service")


TICK_SECONDS = 1.0
REGISTRY_POLL_SECONDS = 1.0
#: The admin switches: endpoint -> the boolean field it reads and sets.
SWITCHES: dict[str, str] = {"/admin/fallback": "enabled", "/admin/pipeline": "paused"}


class LabService:
    """The simulation, its background ticker and its cached exposition."""

    def __init__(
        self,
        models: list[str],
        state_dir: Path | None,
        seed: int | None = None,
        registry: str | None = None,
        registry_interval: float = REGISTRY_POLL_SECONDS,
    ) -> None:
        self.sim = Simulation(
            models, start=time.time(), seed=seed, external_deploys=registry is not None
        )
        self.exposition = Exposition(self.sim)
        self.state_dir = state_dir
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._cache: tuple[int, bytes] = (-1, b"")
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
        self.follower = None if registry is None else Follower(registry, models)
        self.registry_interval = registry_interval
        #: Unix time of the last successful registry poll, and the last poll's error.
        self.registry_synced_at: float | None = None
        self.registry_error: str | None = None
        self._follow_thread = threading.Thread(target=self._follow, name="registry", daemon=True)

    def start(self) -> None:
        """Run the first tick, then keep ticking (and following the registry) in the background."""
        self.tick()
        self._ready.set()
        self._thread.start()
        if self.follower is not None:
            self._follow_thread.start()

    def stop(self) -> None:
        """Stop ticking and following the registry."""
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

    # -- the registry ---------------------------------------------------------------

    def follow_once(self) -> None:
        """Poll the registry once and deploy every champion that moved.

        If the registry cannot be reached, nothing changes: the served versions stay.
        """
        assert self.follower is not None
        try:
            moves = self.follower.poll()
        except web.HTTPCallError as exc:
            if self.registry_synced_at is None and self.registry_error is None:
                log.info("waiting for the registry at %s", self.follower.url)
            elif self.registry_error is None:
                log.warning("registry unreachable (%s); keeping the served versions", exc)
            self.registry_error = str(exc)
            return
        if self.registry_error is not None:
            again = "again" if self.registry_synced_at is not None else "now"
            log.info("registry reachable %s", again)
        self.registry_error = None
        self.registry_synced_at = time.time()
        for model, version, behaviour in moves:
            with self.lock:
                self.sim.deploy(model, version, behaviour)
            log.info(
                "%s: %s -> version %s (error ratio %s, scores %s)",
                model,
                CHAMPION_ALIAS,
                version,
                behaviour.error_ratio,
                behaviour.scores,
            )
            self._journal({"event": "deploy", "model": model, "version": version})

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self.follow_once()
            except Exception:  # a surprising answer must not stop the following
                log.exception("registry poll failed")
            self._stop.wait(self.registry_interval)

    # -- metrics and state --------------------------------------------------------------

    def metrics(self) -> bytes:
        """The exposition of the latest tick, rendered at most once per tick."""
        with self.lock:
            ticks = self.sim.ticks
            if self._cache[0] != ticks:
                self._cache = (ticks, self.exposition.render())
            return self._cache[1]

    def state(self) -> dict[str, Any]:
        """Models, what each serves, active faults, and the registry's state."""
        with self.lock:
            registry = None
            if self.follower is not None:
                registry = {
                    "url": self.follower.url,
                    "alias": self.follower.alias,
                    "champions": dict(self.follower.champions),
                    "synced_at": self.registry_synced_at,
                    "error": self.registry_error,
                }
            return {
                "models": self.sim.model_names,
                "versions": {m.name: m.version for m in self.sim.models},
                "serving": {
                    m.name: {
                        "version": m.version,
                        "label": m.label,
                        "fallback": m.fallback,
                        "paused": m.paused,
                        "error_ratio": m.serving.error_ratio,
                        "scores": m.serving.scores,
                    }
                    for m in self.sim.models
                },
                "faults": self.sim.active_faults(),
                "available_faults": dict(FAULTS),
                "registry": registry,
                "ticks": self.sim.ticks,
            }

    # -- admin ------------------------------------------------------------------------

    def switch(self, endpoint: str, model: str) -> bool:
        """The state of switch ``endpoint`` (a key of :data:`SWITCHES`) for ``model``."""
        with self.lock:
            m = self.sim.model(model)
            return m.fallback if endpoint == "/admin/fallback" else m.paused

    def set_switch(self, endpoint: str, model: str, on: bool) -> None:
        """Flip switch ``endpoint`` for ``model``; UnknownModelError for unknown models."""
        with self.lock:
            if endpoint == "/admin/fallback":
                self.sim.set_fallback(model, on)
            else:
                self.sim.set_paused(model, on)
        field, name = SWITCHES[endpoint], endpoint.rsplit("/", 1)[1]
        log.info("%s: %s %s", model, name, f"{field}={on}")
        self._journal({"event": name, "model": model, field: on})

    def inject(self, fault: str, model: str) -> None:
        """Inject ``fault`` into ``model``; raises ValueError for unknown names."""
        with self.lock:
            self.sim.inject(fault, model, now=time.time())
        log.info("fault injected: %s on %s", fault, model)
        self._journal({"event": "inject", "fault": fault, "model": model})

    def reset(self) -> None:
        """Clear every fault, turn fallbacks off and resume pipelines."""
        with self.lock:
            self.sim.reset()
        log.info("all faults cleared, fallbacks off, pipelines resumed")
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
