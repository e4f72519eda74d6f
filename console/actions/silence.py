"""Silences: create one in Alertmanager (marked, so a crash can be reconciled), and
expire one."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.records import AlertRecord
from console.actions.contracts import Action, ActionError, Change, Plan, utc_minute
from console.audit.chain import AuditEntry
from console.config.models import format_duration, parse_silence_duration
from console.times import iso


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
                    f"silenced until {utc_minute(until)} ({format_duration(duration)})",
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
                            f"{silence.state} until {utc_minute(silence.ends_at)}",
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
