"""Every kind of mitigation by name, and the actions a runbook step may take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.actions.contracts import Action, ActionContext, ActionError, ReadOnlyError
from console.actions.rollback import Rollback
from console.actions.silence import ExpireSilence, Silence, equal_matcher
from console.actions.switches import Fallback, Pipeline
from console.config.models import parse_silence_duration

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
