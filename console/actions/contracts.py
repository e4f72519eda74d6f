"""What every mitigation is: its plan (the changes, before and after), the context it
acts in, and the :class:`Action` contract each kind fills in."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from adapters.base import (
    Adapter,
    AlertsAdapter,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.redaction import Redactor
from console.actions.locks import TargetLock
from console.audit.chain import AuditEntry
from console.config.models import Config
from console.sources.alias_history import AliasHistory

#: How the alias history marks the moves the console made itself.
CONSOLE_SOURCE = "mlconsole:"
#: A rollback the console made this recently makes "roll back again" a decision a
#: person reads: an unattended run (``--yes``, ``runbook run``) refuses to go further.
RECENT_ROLLBACK = 600.0


class ActionError(Exception):
    """An action cannot be planned or run; the message says why, in one line."""


class ReadOnlyError(ActionError):
    """The console runs read-only: no mutation is allowed."""


class ConflictError(ActionError):
    """The world no longer matches the plan: someone else changed it."""


def utc_minute(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown time"


@dataclass(frozen=True, slots=True)
class Change:
    """One line of a plan: what changes, from what, to what."""

    target: str
    before: str
    after: str
    details: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.target}: {self.before} → {self.after}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Exactly what an action will change, computed from the state read just now."""

    action: str
    model: str
    params: Mapping[str, Any]
    """The inputs, JSON-ready and free of secrets: enough to rebuild the action."""
    changes: tuple[Change, ...]
    before: Mapping[str, Any]
    """The state the world must still be in when the action applies."""
    after: Mapping[str, Any]
    """The state the world should be in once it has."""
    notes: tuple[str, ...] = ()
    watch_sli: bool = False
    """Whether the model's SLI should recover after it (serving changes do)."""
    caution: str | None = None
    """Why a person must read this plan before it runs (it rolls back past a rollback
    made minutes ago): shown among the notes; unattended runs refuse it."""

    def summary(self) -> str:
        return "; ".join(change.line() for change in self.changes)

    def lines(self) -> list[str]:
        """The plan as a responder reads it: changes, their details, then notes."""
        out: list[str] = []
        for change in self.changes:
            out.append(change.line())
            out.extend(f"  {detail}" for detail in change.details)
        out.extend(self.notes)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "model": self.model,
            "summary": self.summary(),
            "changes": [
                {"target": c.target, "before": c.before, "after": c.after, "details": c.details}
                for c in self.changes
            ],
            "before": dict(self.before),
            "after": dict(self.after),
            "notes": list(self.notes),
        }


@dataclass
class ActionContext:
    """What actions act through: the sources, the alias history, who is acting."""

    config: Config
    adapters: Mapping[str, Adapter]
    history: AliasHistory | None = None
    actor: str = "unknown"
    read_only: bool = False
    load_errors: Mapping[str, str] = field(default_factory=dict)
    locks: TargetLock | None = None
    """The store's target locks; None runs unlocked (one process, no store)."""

    def _source(self, role: str, name: str | None, kind: type[Adapter]) -> Any:
        if name is None:
            found = [n for n, a in self.adapters.items() if isinstance(a, kind)]
            if len(found) == 1:
                return self.adapters[found[0]]
            if not found:
                failed = [f for f in self.load_errors.values()]
                why = f" ({'; '.join(failed)})" if failed else ""
                raise ActionError(f"no {role} source is configured{why}")
            raise ActionError(f"several {role} sources are configured; set `actions.{role}`")
        adapter = self.adapters.get(name)
        if adapter is None:
            why = self.load_errors.get(name, f"source {name!r} is not configured or is disabled")
            raise ActionError(f"the {role} source cannot be used: {why}")
        if not isinstance(adapter, kind):
            raise ActionError(f"source {name!r} is a {adapter.kind} source, not a {role} source")
        return adapter

    def registry(self) -> RegistryAdapter:
        adapter: RegistryAdapter = self._source(
            "registry", self.config.actions.registry, RegistryAdapter
        )
        return adapter

    def switch(self, role: str) -> SwitchAdapter:
        name = getattr(self.config.actions, role)
        if name is None:
            raise ActionError(f"no {role} switch is configured; set `actions.{role}`")
        adapter: SwitchAdapter = self._source(role, name, SwitchAdapter)
        return adapter

    def alerts(self) -> AlertsAdapter:
        adapter: AlertsAdapter = self._source(
            "silences", self.config.actions.silences, AlertsAdapter
        )
        return adapter

    @functools.cached_property
    def redact(self) -> Redactor:
        """Removes every secret the config holds (each source's settings and raw
        ``options``, in every form) from a message meant for people."""
        return Redactor.for_settings(*self.config.sources.values())


class Action(ABC):
    """One mitigation. Subclasses plan it, check it, apply it and read it back."""

    name: ClassVar[str]
    #: Shown in confirmations: "Roll back", "Silence"...
    title: ClassVar[str]

    def __init__(self, ctx: ActionContext, params: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.params = dict(params)

    @abstractmethod
    async def plan(self) -> Plan:
        """Read the current state and say exactly what would change."""

    @abstractmethod
    async def state(self, plan: Plan) -> dict[str, Any]:
        """Read the real state, in the shape of ``plan.before`` and ``plan.after``."""

    @abstractmethod
    async def apply(self, plan: Plan, intent: AuditEntry) -> dict[str, Any]:
        """Make the change; returns what the result entry should record."""

    def lock_target(self, plan: Plan) -> str:
        """What this action changes, as the name of the lock that serializes it."""
        return f"{self.name}:{plan.model}"

    async def check(self, plan: Plan) -> None:
        """Refuse (ConflictError) if the world no longer matches the plan."""
        now = await self.state(plan)
        if now != dict(plan.before):
            raise ConflictError(self.conflict_message(plan, now))

    def conflict_message(self, plan: Plan, now: Mapping[str, Any]) -> str:
        return (
            f"{plan.summary()}: the state changed since the plan was made "
            f"(planned from {dict(plan.before)}, now {dict(now)}); nothing was changed, "
            "plan again"
        )

    async def read_back(self, plan: Plan, result: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Read the state after apply: (it is what the plan said, what was read)."""
        now = await self.state(plan)
        return now == dict(plan.after), now

    async def reconcile(self, plan: Mapping[str, Any], intent: AuditEntry) -> tuple[str, Any]:
        """For an intent with no result: was it applied? (verdict, what was read)."""
        rebuilt = plan_from_dict(plan)
        now = await self.state(rebuilt)
        if now == dict(rebuilt.after):
            return "applied", now
        if now == dict(rebuilt.before):
            return "not applied", now
        return "unknown", now

    def undo(self, plan: Plan, result: Mapping[str, Any]) -> Action | None:
        """The action that puts things back as they were, if there is one."""
        return None


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """A plan as the audit log stored it (for reconciliation)."""
    return Plan(
        action=str(data.get("action", "")),
        model=str(data.get("model", "")),
        params={},
        changes=tuple(
            Change(str(c["target"]), str(c["before"]), str(c["after"]), tuple(c["details"]))
            for c in data.get("changes", ())
        ),
        before=dict(data.get("before") or {}),
        after=dict(data.get("after") or {}),
        notes=tuple(data.get("notes") or ()),
    )
