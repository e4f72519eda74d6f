"""Everything an action needs, opened together: sources, audit log, alias history.

The dashboard opens one at start-up (in a worker thread, off the first paint);
each CLI action command opens its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import Adapter, AdapterError, RegistryAdapter
from console.actions import ActionContext
from console.alias_history import AliasHistory, HistoryError
from console.audit import AuditError, AuditLog
from console.config import Config
from console.store import store_path

ENV_ACTOR = "MLCONSOLE_ACTOR"


def audit_path(config: Config) -> Path:
    """``actions.audit_path``, else ``audit.db`` beside the store."""
    return config.actions.audit_path or store_path(config).with_name("audit.db")


def resolve_actor(config: Config, override: str | None = None) -> str:
    """``--actor``, then ``actions.actor``, then ``$MLCONSOLE_ACTOR``, then ``user@host``."""
    from console.triage import default_actor

    return override or config.actions.actor or os.environ.get(ENV_ACTOR) or default_actor()


@dataclass
class Workspace:
    ctx: ActionContext
    audit: AuditLog
    history: AliasHistory | None
    owns_adapters: bool = True
    warnings: list[str] = field(default_factory=list)

    async def observe_registry(self) -> None:
        """Record the registry's aliases now, so a rollback knows what it sees."""
        if self.history is None:
            return
        for adapter in self.ctx.adapters.values():
            if isinstance(adapter, RegistryAdapter):
                with contextlib.suppress(AdapterError, HistoryError):
                    self.history.observe(await adapter.models(), self.ctx.config.actions.alias)

    async def close(self) -> None:
        if self.owns_adapters:
            for adapter in self.ctx.adapters.values():
                with contextlib.suppress(Exception):
                    await adapter.aclose()
        self.audit.close()
        if self.history is not None:
            self.history.close()


def open_workspace_sync(
    config: Config,
    *,
    actor: str | None = None,
    read_only: bool = False,
    adapters: Mapping[str, Adapter] | None = None,
    load_errors: Mapping[str, str] | None = None,
) -> Workspace:
    """Open the audit log (AuditError if it cannot be: nothing may run) and the rest."""
    owns = adapters is None
    if adapters is None:
        from console.poller import build_adapters

        adapters, load_errors = build_adapters(config)
    audit = AuditLog(audit_path(config))
    warnings: list[str] = []
    try:
        history: AliasHistory | None = AliasHistory(store_path(config))
    except HistoryError as exc:
        history = None
        warnings.append(f"{exc}; rollbacks fall back to the next lower version")
    ctx = ActionContext(
        config=config,
        adapters=adapters,
        history=history,
        actor=resolve_actor(config, actor),
        read_only=read_only or config.actions.read_only,
        load_errors=load_errors or {},
    )
    return Workspace(ctx, audit, history, owns_adapters=owns, warnings=warnings)


async def open_workspace(config: Config, *, actor: str | None = None) -> Workspace:
    import asyncio

    return await asyncio.to_thread(open_workspace_sync, config, actor=actor)


__all__ = ["AuditError", "Workspace", "audit_path", "open_workspace", "open_workspace_sync"]
