"""Mitigations: one path for every change the console makes to the world.

Every mitigation (roll back, fallback switch, pipeline pause, silence) is an
:class:`Action` and goes the same way, whether a key, the CLI or a runbook step
started it::

    plan()  ->  (a dry run stops here)  ->  confirmation shows the plan
            ->  the target's lock (every console of the store honours it)
            ->  intent, written durably to the audit log (or nothing runs)
            ->  check: the world still matches the plan (else refused, audited)
            ->  apply  ->  read the new state back (another writer: a conflict)
            ->  result, audited  ->  the lock is released
            ->  watch the SLI: recovered or not, audited; if not, the undo plan

Nothing here knows Textual; the screens and the CLI drive :class:`Executor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
import socket
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from adapters.base import (
    Adapter,
    AdapterError,
    AlertRecord,
    AlertsAdapter,
    MetricsAdapter,
    ModelVersion,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.redaction import Redactor
from console.alias_history import AliasHistory, HistoryError
from console.audit import TIME_FORMAT as AUDIT_TIME_FORMAT
from console.audit import AuditEntry, AuditError, AuditLog
from console.config import Config, format_duration, parse_silence_duration
from console.runbook import select_series
from console.target_lock import LockBusy, LockError, TargetLock
from console.timeline import iso

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


def _utc(moment: datetime | None) -> str:
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


# -- roll back -------------------------------------------------------------------


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
    return f"v{number}: created {_utc(version.created_at)}" + (f"; {tags}" if tags else "")


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
                f"v{version} is the version {alias} held before, until {_utc(until)} "
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


# -- switches: fallback and pipeline ---------------------------------------------------


class _Toggle(Action):
    role: ClassVar[str]
    on_word: ClassVar[str]
    off_word: ClassVar[str]
    key: ClassVar[str]

    @property
    def model(self) -> str:
        return str(self.params["model"])

    @property
    def wanted(self) -> bool:
        return bool(self.params[self.key])

    def _word(self, on: bool) -> str:
        return self.on_word if on else self.off_word

    async def plan(self) -> Plan:
        current = await self.ctx.switch(self.role).state(self.model)
        if self.params.get(self.key) is None:  # None: the opposite of what it is now
            self.params[self.key] = not current
        if current == self.wanted:
            raise ActionError(f"{self.model}: {self.what} is already {self._word(current)}")
        return Plan(
            action=self.name,
            model=self.model,
            params={"model": self.model, self.key: self.wanted},
            changes=(
                Change(f"{self.model} {self.what}", self._word(current), self._word(self.wanted)),
            ),
            before={"on": current},
            after={"on": self.wanted},
            notes=self.notes(),
            watch_sli=self.watches(),
        )

    @property
    def what(self) -> str:
        return self.role

    def notes(self) -> tuple[str, ...]:
        return ()

    def watches(self) -> bool:
        return False

    def lock_target(self, plan: Plan) -> str:
        return f"switch:{self.role}:{self.model}"

    async def state(self, plan: Plan) -> dict[str, Any]:
        return {"on": await self.ctx.switch(self.role).state(self.model)}

    async def apply(self, plan: Plan, intent: AuditEntry) -> dict[str, Any]:
        await self.ctx.switch(self.role).set_state(self.model, bool(plan.after["on"]))
        return {}

    def conflict_message(self, plan: Plan, now: Mapping[str, Any]) -> str:
        return (
            f"refused: {self.model}'s {self.what} is now {self._word(bool(now.get('on')))}, "
            f"not {self._word(bool(plan.before['on']))} as the plan showed; someone else "
            "changed it. Nothing was changed"
        )

    def undo(self, plan: Plan, result: Mapping[str, Any]) -> Action | None:
        return type(self)(self.ctx, {"model": self.model, self.key: not self.wanted})


class Fallback(_Toggle):
    """Serve the model's rule-based fallback instead of the model, or stop."""

    name = "fallback"
    title = "Fallback"
    role = "fallback"
    on_word = "rule-based fallback"
    off_word = "the model"
    key = "on"

    @property
    def what(self) -> str:
        return "serving"

    def notes(self) -> tuple[str, ...]:
        if self.wanted:
            return ("predictions come from the rule-based fallback until it is switched off",)
        return ("the model serves again",)

    def watches(self) -> bool:
        return True


class Pipeline(_Toggle):
    """Pause or resume a model's retraining pipeline."""

    name = "pipeline"
    title = "Pipeline"
    role = "pipeline"
    on_word = "paused"
    off_word = "running"
    key = "paused"

    @property
    def what(self) -> str:
        return "retraining pipeline"

    def notes(self) -> tuple[str, ...]:
        if self.wanted:
            return ("no new versions are trained until it is resumed; data freshness will age",)
        return ()


# -- silences ----------------------------------------------------------------------


def audit_marker(intent: AuditEntry) -> str:
    """Put in a silence's comment, so a crash can be reconciled by finding it. The
    hash makes it unique across audit logs (two responders both have an entry #3)."""
    return f"[mlconsole audit #{intent.seq} {intent.hash[:12]}]"


def _matches(alert: AlertRecord, matchers: Sequence[Mapping[str, Any]]) -> bool:
    for m in matchers:
        value = alert.labels.get(str(m["name"]), "")
        if m.get("isRegex"):
            hit = re.fullmatch(str(m["value"]), value) is not None
        else:
            hit = value == str(m["value"])
        if hit != bool(m.get("isEqual", True)):
            return False
    return True


def equal_matcher(name: str, value: str) -> dict[str, object]:
    """An Alertmanager matcher for ``name="value"``."""
    return {"name": name, "value": value, "isRegex": False, "isEqual": True}


def matchers_text(matchers: Sequence[Mapping[str, Any]]) -> str:
    ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
    parts = [
        f'{m["name"]}{ops[(bool(m.get("isRegex")), bool(m.get("isEqual", True)))]}"{m["value"]}"'
        for m in matchers
    ]
    return "{" + ", ".join(parts) + "}"


class Silence(Action):
    """Silence matching alerts in Alertmanager for a while, with a comment."""

    name = "silence"
    title = "Silence"

    async def plan(self) -> Plan:
        matchers = [dict(m) for m in self.params.get("matchers") or ()]
        if not matchers:
            raise ActionError("a silence needs at least one matcher")
        for m in matchers:
            if not m.get("name") or "value" not in m:
                raise ActionError(f"a silence matcher needs a name and a value: {m}")
            if m.get("isRegex"):
                try:
                    re.compile(str(m["value"]))
                except re.error as exc:
                    raise ActionError(f"matcher {m['name']}=~{m['value']!r}: {exc}") from None
        raw = self.params.get("duration")
        try:
            duration = parse_silence_duration(
                self.ctx.config.actions.silence_duration if raw is None else raw
            )
        except ValueError as exc:
            raise ActionError(f"silence duration: {exc}") from None
        comment = str(self.params.get("comment") or "").strip()
        if not comment:
            raise ActionError("a silence needs a comment: say why, for whoever looks next")
        alerts = await self.ctx.alerts().alerts()
        hit = [a for a in alerts if _matches(a, matchers)]
        firing = [a for a in hit if a.state == "active"]
        until = datetime.now(UTC) + timedelta(seconds=duration)
        names = sorted({f"{a.name} ({a.model or 'no model'})" for a in hit})
        return Plan(
            action=self.name,
            model=str(self.params.get("model") or ""),
            params={
                "matchers": matchers,
                "duration": duration,
                "comment": comment,
                "model": self.params.get("model") or "",
            },
            changes=(
                Change(
                    f"alerts {matchers_text(matchers)}",
                    f"{len(firing)} firing, {len(hit)} matching",
                    f"silenced until {_utc(until)} ({format_duration(duration)})",
                    (*names, f'comment: "{comment}", created by {self.ctx.actor}'),
                ),
            ),
            before={},
            after={"silenced": True},
        )

    def lock_target(self, plan: Plan) -> str:
        return "silence:" + matchers_text(
            sorted(plan.params["matchers"], key=lambda m: json.dumps(m, sort_keys=True))
        )

    async def state(self, plan: Plan) -> dict[str, Any]:
        return {}

    async def apply(self, plan: Plan, intent: AuditEntry) -> dict[str, Any]:
        now = datetime.now(UTC)
        ends = now + timedelta(seconds=float(plan.params["duration"]))
        silence_id = await self.ctx.alerts().create_silence(
            tuple(plan.params["matchers"]),
            now,
            ends,
            self.ctx.actor,
            f"{plan.params['comment']} {audit_marker(intent)}",
        )
        return {"silence_id": silence_id, "ends_at": iso(ends)}

    async def read_back(self, plan: Plan, result: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        wanted = result.get("silence_id")
        for silence in await self.ctx.alerts().silences():
            if silence.id == wanted:
                return silence.state in ("active", "pending"), {
                    "silence_id": silence.id,
                    "state": silence.state,
                }
        return False, {"silence_id": wanted, "state": "missing"}

    async def reconcile(self, plan: Mapping[str, Any], intent: AuditEntry) -> tuple[str, Any]:
        marker = audit_marker(intent)
        for silence in await self.ctx.alerts().silences():
            if marker in silence.comment:
                return "applied", {"silence_id": silence.id, "state": silence.state}
        return "not applied", {"silence": None}

    def undo(self, plan: Plan, result: Mapping[str, Any]) -> Action | None:
        silence_id = result.get("silence_id")
        if not silence_id:
            return None
        return ExpireSilence(self.ctx, {"silence_id": silence_id, "model": plan.model})


class ExpireSilence(Action):
    """End a silence now."""

    name = "silence-expire"
    title = "Expire silence"

    async def plan(self) -> Plan:
        wanted = str(self.params["silence_id"])
        for silence in await self.ctx.alerts().silences():
            if silence.id == wanted:
                if silence.state == "expired":
                    raise ActionError(f"silence {wanted} has already expired")
                return Plan(
                    action=self.name,
                    model=str(self.params.get("model") or ""),
                    params={"silence_id": wanted, "model": self.params.get("model") or ""},
                    changes=(
                        Change(
                            f"silence {wanted}",
                            f"{silence.state} until {_utc(silence.ends_at)}",
                            "expired",
                            (f'"{silence.comment}" by {silence.created_by}',),
                        ),
                    ),
                    before={"state": "live"},
                    after={"state": "expired"},
                )
        raise ActionError(f"no silence {wanted} in Alertmanager")

    def lock_target(self, plan: Plan) -> str:
        return f"silence-id:{plan.params['silence_id']}"

    async def state(self, plan: Plan) -> dict[str, Any]:
        wanted = str(plan.params.get("silence_id") or self.params["silence_id"])
        for silence in await self.ctx.alerts().silences():
            if silence.id == wanted:
                return {"state": "expired" if silence.state == "expired" else "live"}
        return {"state": "missing"}

    async def apply(self, plan: Plan, intent: AuditEntry) -> dict[str, Any]:
        await self.ctx.alerts().expire_silence(str(self.params["silence_id"]))
        return {}


ACTIONS: dict[str, type[Action]] = {
    cls.name: cls for cls in (Rollback, Fallback, Pipeline, Silence, ExpireSilence)
}
#: Runbook ``action`` steps name mitigations in their own words.
RUNBOOK_ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "rollback": ("rollback", {}),
    "fallback": ("fallback", {"on": True}),
    "pipeline-pause": ("pipeline", {"paused": True}),
    "pipeline-resume": ("pipeline", {"paused": False}),
    "silence": ("silence", {}),
}
#: Runbook params of a ``silence`` step that are not label matchers.
SILENCE_OPTIONS = frozenset({"duration", "comment", "reason"})


def from_runbook(
    step_action: str, params: Mapping[str, str], *, runbook: str = ""
) -> tuple[str, dict[str, Any]]:
    """A runbook step's action and rendered params, as an action name and its params.

    A ``silence`` step's params are labels to match (``alertname``, ``model``...) plus
    ``duration`` and ``comment``; a ``rollback`` step's ``version`` is its target
    (``to``); the others pass through.
    """
    name, extra = RUNBOOK_ACTIONS.get(step_action, (step_action, {}))
    if name == "rollback" and "version" in params and "to" not in params:
        params = {("to" if k == "version" else k): v for k, v in params.items()}
    if name != "silence":
        return name, {**params, **extra}
    matchers = [equal_matcher(k, v) for k, v in params.items() if k not in SILENCE_OPTIONS]
    out: dict[str, Any] = {
        "matchers": matchers,
        "comment": params.get("comment") or params.get("reason") or f"runbook {runbook}".strip(),
        "model": params.get("model", ""),
    }
    if params.get("duration") is not None:
        try:
            out["duration"] = parse_silence_duration(params["duration"])
        except ValueError as exc:
            raise ActionError(f"silence duration: {exc}") from None
    return name, out


def build_action(ctx: ActionContext, name: str, params: Mapping[str, Any]) -> Action:
    """The action called ``name``; refuses in read-only mode."""
    if ctx.read_only:
        raise ReadOnlyError(
            f"read-only mode: {name} is a mutation and is disabled (drop --read-only "
            "and `actions.read_only` to act)"
        )
    cls = ACTIONS.get(name)
    if cls is None:
        raise ActionError(f"unknown action {name!r} (known: {', '.join(ACTIONS)})")
    return cls(ctx, params)


# -- running an action -------------------------------------------------------------


class Outcome(StrEnum):
    DRY_RUN = "dry-run"
    APPLIED = "applied"
    REFUSED = "refused"
    CONFLICT = "conflict"
    """Applied, but the state read back is another writer's: not a success."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Report:
    """What happened to one action, for the screen, the CLI and the timeline."""

    outcome: Outcome
    plan: Plan
    message: str
    intent_seq: int | None = None
    result_seq: int | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    confirmed: bool | None = None
    """Whether the state read back after apply is the planned one."""
    audit_warning: str | None = None
    """Set when the result could not be written: the action will show as in doubt."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "message": self.message,
            "plan": self.plan.as_dict(),
            "intent_seq": self.intent_seq,
            "result_seq": self.result_seq,
            "result": dict(self.result),
            "error": self.error,
            "confirmed": self.confirmed,
            "audit_warning": self.audit_warning,
        }


class Executor:
    """Runs actions the one audited way."""

    def __init__(
        self, ctx: ActionContext, audit: AuditLog | None, *, incident: str | None = None
    ) -> None:
        self.ctx = ctx
        self.audit = audit
        self.incident = incident

    async def _write(self, kind: str, action: Action, plan: Plan, **fields: Any) -> AuditEntry:
        """:meth:`_append` in a thread: a durable write (synced to disk) that may wait
        for another console's (SQLite's busy timeout), never on the event loop."""
        return await asyncio.to_thread(self._append, kind, action, plan, **fields)

    def _append(self, kind: str, action: Action, plan: Plan, **fields: Any) -> AuditEntry:
        if self.audit is None:
            raise AuditError("no audit log is open")
        return self.audit.append(
            kind,
            actor=self.ctx.actor,
            action=action.name,
            params=plan.params,
            incident=self.incident,
            plan=plan.as_dict(),
            **fields,
        )

    async def run(
        self,
        action: Action,
        plan: Plan,
        *,
        dry_run: bool = False,
        on_wait: Callable[[str], None] | None = None,
        unattended: bool = False,
    ) -> Report:
        """Run a planned action. Raises ReadOnlyError, and AuditError when the intent
        (or a refusal for want of the lock) cannot be written (then nothing ran).

        The target's lock is held from the check through the read-back, so two
        consoles never both apply one plan; ``on_wait`` hears who holds it, if
        someone does, while this waits for it (up to the action lease). An
        ``unattended`` run (no person read the plan) refuses a plan with a caution."""
        if self.ctx.read_only:
            raise ReadOnlyError(f"read-only mode: {plan.summary()} was not applied")
        if dry_run:
            return Report(Outcome.DRY_RUN, plan, f"dry run: {plan.summary()} (nothing changed)")
        if unattended and plan.caution:
            message = self.ctx.redact(
                f"refused: {plan.summary()}: {plan.caution}. An unattended run does not roll "
                "back further: name the version (--to VERSION) or confirm the plan on a "
                "terminal; nothing was changed"
            )
            seq = self._append("refusal", action, plan, error=message).seq
            return Report(Outcome.REFUSED, plan, message, None, seq, error=message)
        locks = self.ctx.locks
        if locks is None:
            return await self._run_locked(action, plan)
        target = action.lock_target(plan)
        lease = action_lease(self.ctx.config)
        try:
            held = await locks.acquire(
                target,
                f"{self.ctx.actor} (pid {os.getpid()} on {socket.gethostname()})",
                lease,
                wait=lease,
                on_wait=None
                if on_wait is None
                else lambda busy: on_wait(f"waiting for the lock: {busy.describe()}"),
            )
        except (LockBusy, LockError) as exc:
            why = "busy" if isinstance(exc, LockBusy) else "cannot be taken"
            message = self.ctx.redact(
                f"refused: {plan.summary()}: the lock on {target} {why}: {exc}; nothing was changed"
            )
            seq = (await self._write("refusal", action, plan, error=message)).seq
            return Report(Outcome.REFUSED, plan, message, None, seq, error=message)
        try:
            return await self._run_locked(action, plan)
        finally:
            with contextlib.suppress(LockError):  # a lease left behind runs out by itself
                await asyncio.to_thread(locks.release, held)  # the store may make it wait

    async def _run_locked(self, action: Action, plan: Plan) -> Report:
        # The intent names the process, so a second console never reconciles an action
        # that is still running (see reconcile_in_doubt).
        intent = await self._write("intent", action, plan, process=this_process())
        try:
            await action.check(plan)
        except ConflictError as exc:
            message = self.ctx.redact(str(exc))
            seq = await self._closing("refusal", action, plan, intent, error=message)
            return Report(Outcome.REFUSED, plan, message, intent.seq, seq, error=message)
        except (AdapterError, ActionError) as exc:
            message = self.ctx.redact(f"not applied: cannot check the current state: {exc}")
            seq = await self._closing(
                "result", action, plan, intent, result={"applied": False}, error=message
            )
            return Report(Outcome.FAILED, plan, message, intent.seq, seq, error=message)
        try:
            result = await action.apply(plan, intent)
        except (AdapterError, ActionError) as exc:
            return await self._failed_apply(action, plan, intent, exc)
        try:
            confirmed, observed = await action.read_back(plan, result)
        except (AdapterError, ActionError) as exc:
            confirmed, observed = False, {"error": self.ctx.redact(str(exc))}
        record = {**result, "applied": True, "read_back": observed, "confirmed": confirmed}
        outcome = Outcome.APPLIED
        message = f"applied: {plan.summary()}" + (
            "" if confirmed else f" (but the state read back is {observed})"
        )
        if not confirmed and "error" not in observed:
            # Under the lock no console moves it: a writer outside the console did.
            outcome = Outcome.CONFLICT
            record["conflict"] = True
            message = self.ctx.redact(
                f"CONFLICT: {plan.summary()} was applied, but the state read back is "
                f"{observed}, not the planned {dict(plan.after)}: something outside the "
                "console changed it between apply and read-back. Look before acting again"
            )
        warning = None
        seq = None
        try:
            seq = (
                await self._write("result", action, plan, result=record, intent_seq=intent.seq)
            ).seq
        except AuditError as exc:
            warning = (
                f"the result could not be written to the audit log ({exc}); "
                "it will show as in doubt and be reconciled at the next start"
            )
        return Report(
            outcome,
            plan,
            message,
            intent.seq,
            seq,
            result=record,
            confirmed=confirmed,
            audit_warning=warning,
        )

    async def _failed_apply(
        self, action: Action, plan: Plan, intent: AuditEntry, exc: Exception
    ) -> Report:
        """Apply raised: find out whether the change happened anyway, and record it."""
        error = self.ctx.redact(str(exc))
        try:
            verdict, observed = await action.reconcile(plan.as_dict(), intent)
        except (AdapterError, ActionError) as read_exc:
            verdict, observed = "unknown", {"error": self.ctx.redact(str(read_exc))}
        record = {"applied": verdict == "applied", "state": verdict, "read_back": observed}
        message = f"failed: {error}; afterwards the change is {verdict}"
        if verdict == "applied":
            message += " (it took effect: watch the model, and undo it if needed)"
        warning = None
        seq = None
        try:
            written = await self._write(
                "result", action, plan, result=record, error=error, intent_seq=intent.seq
            )
            seq = written.seq
        except AuditError as audit_exc:
            warning = f"the failure could not be written to the audit log ({audit_exc})"
        return Report(
            Outcome.FAILED,
            plan,
            message,
            intent.seq,
            seq,
            result=record,
            error=error,
            audit_warning=warning,
        )

    async def _closing(
        self, kind: str, action: Action, plan: Plan, intent: AuditEntry, **fields: Any
    ) -> int | None:
        try:
            return (await self._write(kind, action, plan, intent_seq=intent.seq, **fields)).seq
        except AuditError:
            return None

    def record_verification(self, action: Action, report: Report, recovery: Recovery) -> None:
        """Audit what the SLI did after the action (raises AuditError)."""
        self._append(
            "verify",
            action,
            report.plan,
            result=recovery.as_dict(),
            intent_seq=report.intent_seq,
        )


def this_process() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(process: Mapping[str, Any] | None) -> bool | None:
    """Whether the process that wrote an intent still runs: None when it cannot be
    told (another host, or an intent that does not say)."""
    if not process or process.get("host") != socket.gethostname():
        return None
    pid = process.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- did it help? -------------------------------------------------------------------

#: Where the SLI verification watches came from, in the words a verdict uses.
FROM_ALERT = "the SLI that paged, from the alert's sli label"
FROM_STEP = "the SLI the runbook step names"
FROM_CONFIG = "actions.verify.sli, as the page names no SLI"


@dataclass(frozen=True, slots=True)
class WatchTarget:
    """The SLI verification watches after a mitigation, and why that one.

    ``problem`` is set when nothing can be watched (the page names an SLI the config
    does not have, or its metrics source is not loaded): the verdict then says so
    instead of judging another SLI.
    """

    sli: str
    origin: str
    """Why this SLI: :data:`FROM_ALERT`, :data:`FROM_STEP` or :data:`FROM_CONFIG`."""
    query: str = ""
    threshold: str = ""
    good: Callable[[float], bool] | None = None
    source: str | None = None
    problem: str | None = None
    measure: str = ""
    """What is read when it is not the SLI's own value (its SLO's bad-event ratio):
    a latency SLI judged on the share of slow requests must not read as seconds."""

    def describe(self) -> str:
        """One line for a plan: what will be watched, or that nothing can be."""
        if self.problem:
            return f"nothing can be watched: {self.problem}"
        measure = f" ({self.measure})" if self.measure else ""
        return f"{self.sli}{measure}, {self.origin}: {self.threshold}"


def watch_target(
    config: Config, *, paged_sli: str | None = None, step_sli: str | None = None
) -> WatchTarget:
    """The SLI verification watches: the one that paged (the alert's ``sli`` label),
    else the runbook step's declared ``sli``, else ``actions.verify.sli``.

    A page that names an SLI the config lacks is not judged on another SLI: the target
    carries the problem, and the verdict says nothing could be watched.
    """
    if paged_sli:
        name, origin = paged_sli, FROM_ALERT
    elif step_sli:
        name, origin = step_sli, FROM_STEP
    else:
        name, origin = config.actions.verify.sli, FROM_CONFIG
    sli = next((s for s in config.slis if s.name == name), None)
    if sli is None:
        return WatchTarget(
            name, origin, problem=f"{origin} names {name!r}, which is not among `slis`"
        )
    source = config.metrics_source_for(sli)
    if sli.slo is not None and sli.slo.error_ratio_query:
        budget = 1.0 - sli.slo.target
        return WatchTarget(
            sli.name,
            origin,
            sli.slo.error_ratio_query,
            f"good below {budget:g}, the error budget rate",
            lambda v: v < budget,
            source,
            measure=f"bad-event ratio `{sli.slo.error_ratio_query}`",
        )
    return WatchTarget(
        sli.name, origin, sli.query, f"good when {sli.objective}", sli.objective.met, source
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the SLI did while it was watched after an action."""

    model: str
    sli: str
    query: str
    threshold: str
    recovered: bool
    value: float | None
    elapsed: float
    reads: int
    error: str | None = None
    origin: str = FROM_CONFIG
    """Why this SLI was watched (see :class:`WatchTarget`)."""
    watched: bool = True
    """False when nothing could be watched; ``error`` says why."""
    measure: str = ""
    """See :attr:`WatchTarget.measure`."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sli": self.sli,
            "origin": self.origin,
            "watched": self.watched,
            "query": self.query,
            "threshold": self.threshold,
            "recovered": self.recovered,
            "value": self.value,
            "elapsed": round(self.elapsed, 1),
            "reads": self.reads,
            "error": self.error,
        }

    def line(self) -> str:
        if not self.watched:
            return f"NOT VERIFIED: {self.model}: nothing was watched: {self.error}"
        value = "no data" if self.value is None else f"{self.value:.4g}"
        verdict = "RECOVERED" if self.recovered else "NOT RECOVERED"
        return (
            f"{verdict}: {self.model} {self.sli}{' ' + self.measure if self.measure else ''}"
            f" = {value} ({self.threshold}) after "
            f"{self.elapsed:.0f}s, {self.reads} reads; watched {self.origin}"
        )


ProgressCallback = Callable[[float | None, float, float], None]
"""Called after every read with (value, seconds elapsed, window)."""


async def watch_recovery(
    ctx: ActionContext,
    model: str,
    target: WatchTarget | None = None,
    *,
    on_read: ProgressCallback | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Recovery:
    """Read ``target`` (default: ``actions.verify.sli``) every ``verify.every`` seconds
    for up to ``verify.window``; recovered once ``verify.consecutive`` reads in a row
    are good. When nothing can be watched, the verdict says so at once."""
    cfg = ctx.config.actions.verify
    target = target or watch_target(ctx.config)
    adapter = ctx.adapters.get(target.source or "")
    problem = target.problem
    if problem is None and (target.good is None or not isinstance(adapter, MetricsAdapter)):
        problem = f"the metrics source {target.source!r} of {target.sli} is not loaded"
    if problem is not None or target.good is None or not isinstance(adapter, MetricsAdapter):
        return Recovery(
            model,
            target.sli,
            target.query,
            target.threshold,
            recovered=False,
            value=None,
            elapsed=0.0,
            reads=0,
            error=problem,
            origin=target.origin,
            watched=False,
            measure=target.measure,
        )
    good = target.good
    label = ctx.config.model_label
    # The model's series alone, not every model's, at each read of the watch.
    query = select_series(target.query, label, model) or target.query
    start = clock()
    streak = reads = 0
    value: float | None = None
    error: str | None = None
    while True:
        elapsed = clock() - start
        try:
            result = await adapter.query(query)
            error = None
            value = next((s.value for s in result.samples if s.labels.get(label) == model), None)
        except AdapterError as exc:
            value, error = None, ctx.redact(str(exc))
        reads += 1
        ok = value is not None and not math.isnan(value) and good(value)
        streak = streak + 1 if ok else 0
        if on_read is not None:
            on_read(value, elapsed, cfg.window)
        done = streak >= cfg.consecutive
        if done or elapsed >= cfg.window:
            return Recovery(
                model,
                target.sli,
                target.query,
                target.threshold,
                recovered=done,
                value=value,
                elapsed=elapsed,
                reads=reads,
                error=None if done else error,
                origin=target.origin,
                measure=target.measure,
            )
        await sleep(min(cfg.every, max(0.0, cfg.window - elapsed)) or cfg.every)


# -- in doubt -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciliation:
    intent_seq: int
    action: str
    summary: str
    verdict: str
    observed: Any = None
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"#{self.intent_seq} {self.summary}: still in doubt ({self.error})"
        return f"#{self.intent_seq} {self.summary}: {self.verdict} (read: {self.observed})"


def action_lease(config: Config) -> float:
    """How long an intent may stay open while its action still runs: three requests
    (check, apply, read back) at the slowest source's full retry budget, plus margin."""
    budget = max((s.retry_budget for s in config.sources.values()), default=5.0)
    return 3 * budget + 10.0


def _age(entry: AuditEntry, now: float) -> float:
    try:
        at = datetime.strptime(str(entry.body.get("at")), AUDIT_TIME_FORMAT)
    except ValueError:
        return math.inf
    return now - at.replace(tzinfo=UTC).timestamp()


async def reconcile_in_doubt(
    ctx: ActionContext,
    audit: AuditLog,
    *,
    now: float | None = None,
    doubtful: list[AuditEntry] | None = None,
) -> list[Reconciliation]:
    """Settle every intent that has no result by reading the real state, and audit it.

    An intent whose process still runs on this host, or (when that cannot be told)
    that is younger than the action lease (:func:`action_lease`), belongs to an action
    in progress and is left alone. Reconciling only reads; it is allowed in read-only
    mode. A reconcile entry that cannot be written leaves its intent in doubt, said so.
    """
    now = time.time() if now is None else now
    lease = action_lease(ctx.config)
    out: list[Reconciliation] = []
    try:
        doubtful = audit.in_doubt() if doubtful is None else doubtful
    except AuditError as exc:
        return [Reconciliation(0, "?", "the audit log", "in doubt", error=str(exc))]
    for entry in doubtful:
        body = entry.body
        alive = _alive(body.get("process"))
        if alive or (alive is None and _age(entry, now) < lease):
            continue  # may still be running: its own process writes the result
        plan = body.get("plan") or {}
        summary = str(plan.get("summary") or body.get("action"))
        cls = ACTIONS.get(str(body.get("action")))
        if cls is None:
            out.append(
                Reconciliation(
                    entry.seq,
                    str(body.get("action")),
                    summary,
                    "in doubt",
                    error="unknown action",
                )
            )
            continue
        action = cls(ctx, body.get("params") or {})
        try:
            verdict, observed = await action.reconcile(plan, entry)
        except (AdapterError, ActionError, KeyError, ValueError, TypeError) as exc:
            out.append(
                Reconciliation(
                    entry.seq, action.name, summary, "in doubt", error=ctx.redact(str(exc))
                )
            )
            continue
        try:
            audit.append(
                "reconcile",
                actor=ctx.actor,
                action=action.name,
                params=body.get("params") or {},
                incident=body.get("incident"),
                plan=plan,
                result={"verdict": verdict, "observed": observed},
                intent_seq=entry.seq,
            )
        except AuditError as exc:
            out.append(
                Reconciliation(
                    entry.seq,
                    action.name,
                    summary,
                    verdict,
                    observed,
                    error=f"read {verdict}, but the verdict could not be written: {exc}",
                )
            )
            continue
        out.append(Reconciliation(entry.seq, action.name, summary, verdict, observed))
    return out
