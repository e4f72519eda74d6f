"""Roll back: move the model's serving alias to an earlier version, in the registry."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters.base import RegistryAdapter
from adapters.records import ModelVersion, RegisteredModel
from console.actions.contracts import (
    CONSOLE_SOURCE,
    RECENT_ROLLBACK,
    Action,
    ActionError,
    Change,
    ConflictError,
    Plan,
    utc_minute,
)
from console.audit.chain import AuditEntry
from console.sources.alias_history import HistoryError


def _rolled_back_from(changes: list[tuple[str | None, str | None, float, str]]) -> set[str]:
    """Versions the console moved the alias away from since anyone else last moved it:
    not targets again in this run of rollbacks. A deploy (or a person) starts a new
    run, so one bad run never rules a version out for good."""
    skip: set[str] = set()
    for previous, _, _, source in changes:
        if not source.startswith(CONSOLE_SOURCE):
            skip.clear()
        elif previous is not None:
            skip.add(previous)
    return skip


def _describe_version(version: ModelVersion | None, number: str) -> str:
    if version is None:
        return f"v{number}: not in the registry"
    tags = ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items()))
    return f"v{number}: created {utc_minute(version.created_at)}" + (f"; {tags}" if tags else "")


class Rollback(Action):
    """Point the serving alias back at the version it held before."""

    name = "rollback"
    title = "Roll back"

    @property
    def model(self) -> str:
        return str(self.params["model"])

    @property
    def alias(self) -> str:
        return str(self.params.get("alias") or self.ctx.config.actions.alias)

    async def plan(self) -> Plan:
        registry = self.ctx.registry()
        model, alias = self.model, self.alias
        current = await registry.alias(model, alias)
        if current is None:
            raise ActionError(
                f"{model} has no alias {alias!r} in the registry: nothing to roll back"
            )
        if self.ctx.history is not None:
            # What the registry holds now goes into the alias history the target is
            # worked out from: a move made outside the console since the last poll (or
            # with no poller at all, from a command) is counted.
            with contextlib.suppress(HistoryError):
                self.ctx.history.observe([RegisteredModel(model, {alias: current})], alias)
        notes: list[str] = []
        caution: str | None = None
        target = self.params.get("to")
        if target is not None:
            target = str(target).removeprefix("v")
            notes.append(f"target v{target} was chosen by hand")
        else:
            target, why = await self._previous(registry, model, alias, current)
            notes.append(why)
            caution = self._recent_rollback(model, alias, current)
            if caution is not None:
                notes.append(caution)
        if target == current:
            raise ActionError(f"{model}@{alias} already points at v{current}")
        before_v, after_v = await asyncio.gather(
            registry.version(model, current), registry.version(model, target)
        )
        if after_v is None:
            raise ActionError(f"{model} has no version {target} in the registry")
        return Plan(
            action=self.name,
            model=model,
            params={"model": model, "alias": alias, "to": target},
            changes=(
                Change(
                    f"{model}@{alias}",
                    f"v{current}",
                    f"v{target}",
                    (_describe_version(before_v, current), _describe_version(after_v, target)),
                ),
            ),
            before={"version": current},
            after={"version": target},
            notes=tuple(notes),
            watch_sli=True,
            caution=caution,
        )

    def _recent_rollback(self, model: str, alias: str, current: str) -> str | None:
        """A warning when ``current`` was set by a console's rollback minutes ago: going
        back once more is then likely one responder repeating another's rollback."""
        changes = self._changes(model, alias)
        if not changes:
            return None
        previous, version, at, source = changes[-1]
        age = time.time() - at
        if version != current or not source.startswith(CONSOLE_SOURCE) or age > RECENT_ROLLBACK:
            return None
        who = source.removeprefix(CONSOLE_SOURCE) or "a console"
        return (
            f"CAUTION: {who} rolled {alias} back to v{current} (from v{previous}) "
            f"{max(0.0, age):.0f}s ago; this rolls back once more"
        )

    async def check(self, plan: Plan) -> None:
        """The alias must still be where the plan found it, and, when the target was
        derived ("the version before"), deriving it now, under the lock, must give the
        same version: another console's rollback may have landed between this plan and
        the lock, and the version before is then another one."""
        await super().check(plan)
        if self.params.get("to") is not None:
            return
        again = await self.plan()
        if dict(again.after) != dict(plan.after) or (again.caution and not plan.caution):
            raise ConflictError(
                f"refused: {plan.summary()}: the version before v{plan.before['version']} "
                f"is now v{again.after['version']}"
                + (f" ({again.caution})" if again.caution else "")
                + "; another console rolled back meanwhile. Nothing was changed: look "
                "again, then plan again"
            )

    async def _previous(
        self, registry: RegistryAdapter, model: str, alias: str, current: str
    ) -> tuple[str, str]:
        """The version to go back to: the one the alias held before, from the alias
        history, never one the console already rolled back from; else the next lower."""
        changes = self._changes(model, alias)
        skip = _rolled_back_from(changes)
        timeline = [(version, at) for _, version, at, _ in changes]
        if not timeline or timeline[-1][0] != current:
            timeline.append((current, time.time()))  # moved since the last poll
        for index in range(len(timeline) - 2, -1, -1):
            version, _ = timeline[index]
            if version is None or version == current or version in skip:
                continue
            until = datetime.fromtimestamp(timeline[index + 1][1], UTC)
            note = (
                f"v{version} is the version {alias} held before, until {utc_minute(until)} "
                "(alias history)"
            )
            if skip:
                note += f"; skipping v{', v'.join(sorted(skip))}, already rolled back from"
            return version, note
        versions = await registry.versions(model)
        lower = [
            v
            for v in versions
            if current.isdigit() and 0 <= v.number < int(current) and v.version not in skip
        ]
        if not lower:
            raise ActionError(
                f"no earlier version of {model} to roll back to (no alias history, and "
                f"nothing below v{current}); use --to VERSION"
            )
        best = max(lower, key=lambda v: v.number)
        why = (
            f"no earlier version of {model} in the alias history"
            if changes
            else f"no alias change of {model} was observed"
        )
        return best.version, f"{why}; v{best.version} is the next lower version"

    def _changes(self, model: str, alias: str) -> list[tuple[str | None, str | None, float, str]]:
        if self.ctx.history is None:
            return []
        try:
            return self.ctx.history.changes(model, alias)
        except (HistoryError, sqlite3.Error):
            return []

    def lock_target(self, plan: Plan) -> str:
        return f"alias:{self.model}@{self.alias}"

    async def state(self, plan: Plan) -> dict[str, Any]:
        return {"version": await self.ctx.registry().alias(self.model, self.alias)}

    async def apply(self, plan: Plan, intent: AuditEntry) -> dict[str, Any]:
        await self.ctx.registry().set_alias(self.model, self.alias, str(plan.after["version"]))
        return {}

    async def read_back(self, plan: Plan, result: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        ok, now = await super().read_back(plan, result)
        if ok and self.ctx.history is not None:
            with contextlib.suppress(HistoryError):  # the next poll records it anyway
                self.ctx.history.record(
                    self.model,
                    self.alias,
                    str(now["version"]),
                    source=f"{CONSOLE_SOURCE}{self.ctx.actor}",
                )
        return ok, now

    def conflict_message(self, plan: Plan, now: Mapping[str, Any]) -> str:
        return (
            f"refused: {self.model}@{self.alias} now points at v{now.get('version')}, not "
            f"v{plan.before['version']} as the plan showed; someone else moved it. "
            "Nothing was changed: look again, then plan again"
        )

    def undo(self, plan: Plan, result: Mapping[str, Any]) -> Action | None:
        return Rollback(self.ctx, {**plan.params, "to": plan.before["version"]})
