"""Switches: the fallback (serve the fallback model) and the pipeline pause."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from console.actions.contracts import Action, ActionError, Change, Plan
from console.audit.chain import AuditEntry


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
