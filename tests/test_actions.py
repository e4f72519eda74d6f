"""The action path with in-memory sources: ordering, refusals, failures, reconciliation.

The real registry, switches and Alertmanager are exercised in
tests/test_integration_actions.py; here the sources are scripted so each branch
of the path (and the order of audit writes around it) can be pinned exactly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.base import (
    AdapterError,
    AlertsAdapter,
    MetricsAdapter,
    RegistryAdapter,
    SwitchAdapter,
)
from adapters.records import (
    AlertRecord,
    ModelVersion,
    QueryResult,
    RangeResult,
    RegisteredModel,
    Sample,
    SilenceRecord,
)
from adapters.settings import SourceSettings
from console.actions.contracts import ActionContext, ActionError, ReadOnlyError
from console.actions.executor import Executor, Outcome
from console.actions.kinds import build_action
from console.actions.reconcile import reconcile_in_doubt
from console.actions.verify import watch_recovery
from console.audit.chain import AuditError
from console.audit.log import AuditLog
from console.config.models import Config
from console.promql import select_series
from console.sources.alias_history import AliasHistory
from tests.builders import CONFIG

SETTINGS = SourceSettings(url="http://127.0.0.1:1")
#: Past any action lease: intents written now are old by then.
LATER = 4_000_000_000.0
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


class Registry(RegistryAdapter):
    """A registry in memory; ``on_set`` runs inside set_alias (to look at the audit)."""

    def __init__(self) -> None:
        super().__init__("registry", SETTINGS)
        self.aliases = {"fraud-detector": {"champion": "4"}}
        self.tags = {
            "1": {"auc": "0.90"},
            "2": {"auc": "0.91"},
            "3": {"auc": "0.93"},
            "4": {"auc": "0.71"},
        }
        self.on_set: Any = None
        self.after_set: Any = None
        self.fail_set: Exception | None = None
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise AdapterError("registry", "cannot connect (ConnectError)", hint="is MLflow up?")

    async def models(self) -> tuple[RegisteredModel, ...]:
        self._check()
        return tuple(RegisteredModel(m, dict(a)) for m, a in self.aliases.items())

    async def versions(self, model: str) -> tuple[ModelVersion, ...]:
        self._check()
        return tuple(
            ModelVersion(model, v, T0, tags) for v, tags in sorted(self.tags.items(), reverse=True)
        )

    async def version(self, model: str, version: str) -> ModelVersion | None:
        self._check()
        tags = self.tags.get(version)
        return None if tags is None else ModelVersion(model, version, T0, tags)

    async def alias(self, model: str, alias: str) -> str | None:
        self._check()
        return self.aliases.get(model, {}).get(alias)

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        self._check()
        if self.on_set is not None:
            self.on_set()
        if self.fail_set is not None:
            raise self.fail_set
        self.aliases.setdefault(model, {})[alias] = version
        if self.after_set is not None:
            self.after_set()


class Switch(SwitchAdapter):
    def __init__(self, name: str) -> None:
        super().__init__(name, SETTINGS)
        self.on: dict[str, bool] = {}

    async def state(self, target: str) -> bool:
        return self.on.get(target, False)

    async def set_state(self, target: str, on: bool) -> None:
        self.on[target] = on


class Alerts(AlertsAdapter):
    def __init__(self) -> None:
        super().__init__("alertmanager", SETTINGS)
        self.created: list[dict[str, Any]] = []

    async def alerts(self) -> tuple[AlertRecord, ...]:
        return (
            AlertRecord(
                "fp1",
                {"alertname": "ModelErrorBudgetBurn", "model": "fraud-detector"},
                {},
                T0,
                None,
                None,
                "active",
            ),
        )

    async def groups(self):  # type: ignore[no-untyped-def]
        return ()

    async def silences(self) -> tuple[SilenceRecord, ...]:
        return tuple(
            SilenceRecord(s["id"], tuple(s["matchers"]), T0, T0, s["by"], s["comment"], "active")
            for s in self.created
        )

    async def create_silence(
        self,
        matchers: tuple[Mapping[str, object], ...],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        self.created.append(
            {
                "id": f"s{len(self.created) + 1}",
                "matchers": matchers,
                "by": created_by,
                "comment": comment,
            }
        )
        return str(self.created[-1]["id"])

    async def expire_silence(self, silence_id: str) -> None:
        raise AssertionError("not used")


class Metrics(MetricsAdapter):
    """Answers every query with the next value of a script, for fraud-detector."""

    def __init__(self, values: list[float | None]) -> None:
        super().__init__("prometheus", SETTINGS)
        self.values = list(values)

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        samples = () if value is None else (Sample({"model": "fraud-detector"}, value, 0.0),)
        return QueryResult(promql, samples)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        return RangeResult(promql, ())


def config(**actions: Any) -> Config:
    from console.config.models import ActionsConfig, SourceConfig

    sources = dict(CONFIG.sources)
    sources["serving"] = SourceConfig(type="http-switch", url="http://127.0.0.1:3")
    sources["pipelines"] = SourceConfig(type="http-switch", url="http://127.0.0.1:3")
    sources["prometheus"] = sources["prometheus"].model_copy(
        update={"bearer_token": SecretStr("s3cret-token")}
    )
    return CONFIG.model_copy(
        update={
            "sources": sources,
            "actions": ActionsConfig.model_validate(
                {
                    "fallback": "serving",
                    "pipeline": "pipelines",
                    "verify": {"window": 10, "every": 1, "consecutive": 2},
                    **actions,
                }
            ),
        }
    )


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    adapters = {
        "registry": Registry(),
        "serving": Switch("serving"),
        "pipelines": Switch("pipelines"),
        "alertmanager": Alerts(),
        "prometheus": Metrics([0.5]),
    }
    history = AliasHistory(tmp_path / "store.db")
    ctx = ActionContext(config(), adapters, history, actor="ana@ops")
    audit = AuditLog(tmp_path / "audit.db")
    return {"ctx": ctx, "audit": audit, "history": history, **adapters}


def kinds(audit: AuditLog) -> list[str]:
    return [e.kind for e in audit.entries()]


async def test_rollback_plan_shows_before_and_after_with_versions(world: dict[str, Any]) -> None:
    plan = await build_action(world["ctx"], "rollback", {"model": "fraud-detector"}).plan()
    assert plan.summary() == "fraud-detector@champion: v4 → v3"
    details = plan.changes[0].details
    assert details[0].startswith("v4: created 2026-11-23 03:00 UTC") and "auc=0.71" in details[0]
    assert "auc=0.93" in details[1]
    assert any("next lower version" in note for note in plan.notes)


async def test_rollback_target_comes_from_the_observed_alias_history(
    world: dict[str, Any],
) -> None:
    registry, history = world["registry"], world["history"]
    registry.aliases["fraud-detector"]["champion"] = "2"
    history.observe(await registry.models(), "champion", at=100.0)
    registry.aliases["fraud-detector"]["champion"] = "4"  # a deploy tool skipped v3
    history.observe(await registry.models(), "champion", at=200.0)
    plan = await build_action(world["ctx"], "rollback", {"model": "fraud-detector"}).plan()
    assert plan.summary() == "fraud-detector@champion: v4 → v2"
    assert "alias history" in plan.notes[0]


async def test_dry_run_changes_and_audits_nothing(world: dict[str, Any]) -> None:
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    report = await Executor(world["ctx"], world["audit"]).run(action, plan, dry_run=True)
    assert report.outcome is Outcome.DRY_RUN
    assert world["registry"].aliases["fraud-detector"]["champion"] == "4"
    assert kinds(world["audit"]) == []


async def test_intent_is_durable_before_apply_and_result_after(world: dict[str, Any]) -> None:
    audit: AuditLog = world["audit"]
    seen_at_apply: list[list[str]] = []
    # Read the file through a second connection: the intent must be committed, not pending.
    world["registry"].on_set = lambda: seen_at_apply.append(
        [r[0] for r in sqlite3.connect(audit.path).execute("SELECT body FROM audit")]
    )
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    report = await Executor(world["ctx"], audit, incident="INC-1").run(action, plan)
    assert report.outcome is Outcome.APPLIED and report.confirmed
    assert len(seen_at_apply[0]) == 1 and '"kind":"intent"' in seen_at_apply[0][0]
    assert kinds(audit) == ["intent", "result"]
    intent, result = audit.entries()
    assert intent.body["actor"] == "ana@ops" and intent.body["incident"] == "INC-1"
    assert intent.body["plan"]["before"] == {"version": "4"}
    assert result.body["intent_seq"] == intent.seq
    assert result.body["result"]["read_back"] == {"version": "3"}
    assert audit.verify().ok
    # The console's own move is in the alias history, with who made it.
    assert world["history"].changes("fraud-detector", "champion")[-1][1:4:2] == (
        "3",
        "mlconsole:ana@ops",
    )


async def test_a_moved_alias_is_refused_and_the_refusal_audited(world: dict[str, Any]) -> None:
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    world["registry"].aliases["fraud-detector"]["champion"] = "5"  # someone else deployed
    report = await Executor(world["ctx"], world["audit"]).run(action, plan)
    assert report.outcome is Outcome.REFUSED
    assert "now points at v5, not v4" in report.message
    assert world["registry"].aliases["fraud-detector"]["champion"] == "5"
    assert kinds(world["audit"]) == ["intent", "refusal"]
    assert world["audit"].in_doubt() == []


async def test_an_unwritable_audit_log_means_nothing_runs(world: dict[str, Any]) -> None:
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    audit: AuditLog = world["audit"]
    audit.close()  # any write now fails
    with pytest.raises(AuditError):
        await Executor(world["ctx"], audit).run(action, plan)
    assert world["registry"].aliases["fraud-detector"]["champion"] == "4"
    with pytest.raises(AuditError):
        await Executor(world["ctx"], None).run(action, plan)


async def test_a_failed_apply_is_recorded_with_what_the_world_says(world: dict[str, Any]) -> None:
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    world["registry"].fail_set = AdapterError("registry", "HTTP 503: 'overloaded'")
    report = await Executor(world["ctx"], world["audit"]).run(action, plan)
    assert report.outcome is Outcome.FAILED
    assert "HTTP 503" in report.message and "not applied" in report.message
    result = world["audit"].entries()[-1].body
    assert result["kind"] == "result" and result["result"]["state"] == "not applied"
    assert "HTTP 503" in result["error"]


async def test_registry_down_at_plan_time_writes_nothing(world: dict[str, Any]) -> None:
    world["registry"].down = True
    with pytest.raises(AdapterError, match="cannot connect"):
        await build_action(world["ctx"], "rollback", {"model": "fraud-detector"}).plan()
    assert kinds(world["audit"]) == []


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("rollback", {"model": "fraud-detector"}),
        ("fallback", {"model": "fraud-detector", "on": True}),
        ("pipeline", {"model": "fraud-detector", "paused": True}),
        ("silence", {"matchers": [{"name": "model", "value": "x"}], "comment": "c"}),
        ("silence-expire", {"silence_id": "s1"}),
    ],
)
async def test_read_only_refuses_every_action(
    world: dict[str, Any], name: str, params: dict[str, Any]
) -> None:
    ctx: ActionContext = world["ctx"]
    writable = build_action(ctx, name, params)
    ctx.read_only = True
    with pytest.raises(ReadOnlyError):
        build_action(ctx, name, params)
    # Even an action built before the switch cannot run through the executor.
    from console.actions.contracts import Plan

    plan = Plan(name, "fraud-detector", params, (), {}, {})
    with pytest.raises(ReadOnlyError):
        await Executor(ctx, world["audit"]).run(writable, plan)
    assert kinds(world["audit"]) == []


async def test_fallback_and_pipeline_toggle_and_undo(world: dict[str, Any]) -> None:
    ctx, audit = world["ctx"], world["audit"]
    for name, key, switch in (("fallback", "on", "serving"), ("pipeline", "paused", "pipelines")):
        action = build_action(ctx, name, {"model": "fraud-detector", key: True})
        plan = await action.plan()
        report = await Executor(ctx, audit).run(action, plan)
        assert report.outcome is Outcome.APPLIED and world[switch].on["fraud-detector"]
        undo = action.undo(plan, report.result)
        assert undo is not None
        undo_plan = await undo.plan()
        assert undo_plan.after == {"on": False}
        with pytest.raises(ActionError, match="already"):
            await build_action(ctx, name, {"model": "fraud-detector", key: True}).plan()
    assert fallback_summary(ctx) == "fraud-detector serving: the model → rule-based fallback"


def fallback_summary(ctx: ActionContext) -> str:
    from console.actions.contracts import Change

    return Change("fraud-detector serving", "the model", "rule-based fallback").line()


async def test_silence_names_the_actor_and_marks_the_audit_entry(world: dict[str, Any]) -> None:
    ctx, audit = world["ctx"], world["audit"]
    action = build_action(
        ctx,
        "silence",
        {
            "matchers": [{"name": "model", "value": "fraud-detector", "isEqual": True}],
            "duration": 1800,
            "comment": "rolling back",
        },
    )
    plan = await action.plan()
    assert "1 firing, 1 matching" in plan.summary() and "(30m)" in plan.summary()
    report = await Executor(ctx, audit).run(action, plan)
    assert report.outcome is Outcome.APPLIED and report.confirmed
    created = world["alertmanager"].created[0]
    assert created["by"] == "ana@ops"
    intent = audit.entries()[0]
    assert created["comment"] == f"rolling back [mlconsole audit #1 {intent.hash[:12]}]"
    assert report.result["silence_id"] == "s1"


async def test_a_silence_needs_a_comment(world: dict[str, Any]) -> None:
    action = build_action(world["ctx"], "silence", {"matchers": [{"name": "a", "value": "b"}]})
    with pytest.raises(ActionError, match="comment"):
        await action.plan()


async def test_in_doubt_intents_are_reconciled_from_the_real_state(world: dict[str, Any]) -> None:
    ctx, audit = world["ctx"], world["audit"]
    action = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    # A crash after the intent, before and after the registry moved:
    audit.append("intent", actor="x", action="rollback", params=plan.params, plan=plan.as_dict())
    settled = await reconcile_in_doubt(ctx, audit, now=LATER)
    assert [s.verdict for s in settled] == ["not applied"]
    audit.append("intent", actor="x", action="rollback", params=plan.params, plan=plan.as_dict())
    world["registry"].aliases["fraud-detector"]["champion"] = "3"
    settled = await reconcile_in_doubt(ctx, audit, now=LATER)
    assert [s.verdict for s in settled] == ["applied"]
    assert audit.in_doubt() == [] and audit.verify().ok
    # A source that is down leaves it in doubt, said so, and writes nothing.
    audit.append("intent", actor="x", action="rollback", params=plan.params, plan=plan.as_dict())
    world["registry"].down = True
    settled = await reconcile_in_doubt(ctx, audit, now=LATER)
    assert settled[0].error and "cannot connect" in settled[0].error
    assert len(audit.in_doubt()) == 1


async def test_watch_reports_recovered_after_consecutive_good_reads(
    world: dict[str, Any],
) -> None:
    ctx: ActionContext = world["ctx"]
    ctx.adapters["prometheus"].values = [0.5, 0.2, 0.004, 0.003]  # type: ignore[attr-defined]
    clock = iter(range(100))
    seen: list[float | None] = []
    recovery = await watch_recovery(
        ctx,
        "fraud-detector",
        on_read=lambda v, e, w: seen.append(v),
        sleep=_no_sleep,
        clock=lambda: float(next(clock)),
    )
    assert recovery.recovered and recovery.reads == 4 and seen == [0.5, 0.2, 0.004, 0.003]
    assert recovery.threshold == "good when < 0.01"  # no error_ratio_query: the objective


async def test_watch_reports_not_recovered_at_the_end_of_the_window(
    world: dict[str, Any],
) -> None:
    ctx: ActionContext = world["ctx"]
    ctx.adapters["prometheus"].values = [0.5]  # type: ignore[attr-defined]
    clock = iter(range(0, 100, 2))
    recovery = await watch_recovery(
        ctx, "fraud-detector", sleep=_no_sleep, clock=lambda: float(next(clock))
    )
    assert not recovery.recovered and recovery.value == 0.5 and recovery.elapsed >= 10


async def _no_sleep(seconds: float) -> None:
    return None


def test_secrets_are_redacted_from_messages(world: dict[str, Any]) -> None:
    ctx: ActionContext = world["ctx"]
    assert ctx.redact("401 for Bearer s3cret-token at x") == "401 for Bearer *** at x"


async def deployed(world: dict[str, Any], *versions: str) -> None:
    """The alias moved through ``versions`` by a deploy tool, each move observed."""
    registry, history = world["registry"], world["history"]
    for at, version in enumerate(versions):
        registry.aliases["fraud-detector"]["champion"] = version
        history.observe(await registry.models(), "champion", at=100.0 * (at + 1))


async def test_a_second_rollback_never_returns_to_the_version_rolled_back_from(
    world: dict[str, Any],
) -> None:
    ctx, audit = world["ctx"], world["audit"]
    await deployed(world, "3", "4")  # v4: the bad deploy
    action = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    assert plan.summary() == "fraud-detector@champion: v4 → v3"
    await Executor(ctx, audit).run(action, plan)
    # v3 did not help either: r again goes further back, not forward to v4.
    again = await build_action(ctx, "rollback", {"model": "fraud-detector"}).plan()
    assert again.summary() == "fraud-detector@champion: v3 → v2"
    assert "next lower version" in again.notes[0]


async def test_an_unattended_rollback_does_not_repeat_another_consoles_rollback(
    world: dict[str, Any],
) -> None:
    ctx, audit, registry = world["ctx"], world["audit"], world["registry"]
    await deployed(world, "3", "4")  # v4: the bad deploy
    first = build_action(ctx, "rollback", {"model": "fraud-detector"})
    assert (await Executor(ctx, audit).run(first, await first.plan())).outcome is Outcome.APPLIED
    # A second responder's `rollback --yes`, a moment later: its plan would go on to v2.
    second = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await second.plan()
    assert plan.summary() == "fraud-detector@champion: v3 → v2"
    assert plan.caution and "ana@ops rolled champion back to v3 (from v4)" in plan.caution
    assert plan.caution in plan.notes  # the person reading the plan sees it
    report = await Executor(ctx, audit).run(second, plan, unattended=True)
    assert report.outcome is Outcome.REFUSED and "--to VERSION" in report.message
    assert registry.aliases["fraud-detector"]["champion"] == "3"
    assert kinds(audit)[-1] == "refusal"
    # Named by hand, or confirmed by a person who read the caution, it runs.
    named = build_action(ctx, "rollback", {"model": "fraud-detector", "to": "2"})
    named_plan = await named.plan()
    assert named_plan.caution is None
    report = await Executor(ctx, audit).run(named, named_plan, unattended=True)
    assert report.outcome is Outcome.APPLIED


async def test_a_rollback_landing_between_plan_and_lock_refuses_the_derived_target(
    world: dict[str, Any],
) -> None:
    ctx, audit, registry, history = (
        world["ctx"],
        world["audit"],
        world["registry"],
        world["history"],
    )
    await deployed(world, "2", "3", "4")
    # Another console has just set v3 and is still inside its lock: the registry says
    # v3, but its move is not in the history yet (it records it at read-back).
    registry.aliases["fraud-detector"]["champion"] = "3"
    second = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await second.plan()
    assert plan.summary() == "fraud-detector@champion: v3 → v4"  # "the version before"
    # That console reads back and records its move; then this one gets the lock.
    history.record("fraud-detector", "champion", "3", source="mlconsole:bob@ops")
    report = await Executor(ctx, audit).run(second, plan)
    assert report.outcome is Outcome.REFUSED, report.message
    assert "the version before v3 is now v2" in report.message
    assert registry.aliases["fraud-detector"]["champion"] == "3"  # never back to the bad v4


async def test_an_intent_still_being_applied_is_not_reconciled(world: dict[str, Any]) -> None:
    ctx, audit = world["ctx"], world["audit"]
    plan = await build_action(ctx, "rollback", {"model": "fraud-detector"}).plan()
    from console.actions.lease import this_process

    # Our own process: alive, so in progress whatever its age.
    audit.append(
        "intent",
        actor="x",
        action="rollback",
        params=plan.params,
        plan=plan.as_dict(),
        process=this_process(),
    )
    assert await reconcile_in_doubt(ctx, audit, now=LATER) == []
    # Another host's intent, seconds old: within the lease, left alone; later, settled.
    audit.append(
        "intent",
        actor="y",
        action="rollback",
        params=plan.params,
        plan=plan.as_dict(),
        process={"host": "elsewhere", "pid": 1},
    )
    assert await reconcile_in_doubt(ctx, audit) == []
    assert [r.intent_seq for r in await reconcile_in_doubt(ctx, audit, now=LATER)] == [2]
    assert len(audit.in_doubt()) == 1


async def test_a_bad_regex_matcher_is_a_clear_error(world: dict[str, Any]) -> None:
    action = build_action(
        world["ctx"],
        "silence",
        {"matchers": [{"name": "model", "value": "[", "isRegex": True}], "comment": "c"},
    )
    with pytest.raises(ActionError, match=r"model=~'\['"):
        await action.plan()


def test_runbook_silence_params_become_matchers_duration_and_comment() -> None:
    from console.actions.kinds import from_runbook

    name, params = from_runbook(
        "silence",
        {"alertname": "ModelFeatureDrift", "model": "m1", "duration": "24h", "comment": "ok"},
        runbook="data-drift",
    )
    assert name == "silence" and params["duration"] == 86400 and params["comment"] == "ok"
    assert [(m["name"], m["value"]) for m in params["matchers"]] == [
        ("alertname", "ModelFeatureDrift"),
        ("model", "m1"),
    ]
    assert from_runbook("pipeline-pause", {"model": "m1", "reason": "r"}) == (
        "pipeline",
        {"model": "m1", "reason": "r", "paused": True},
    )
    with pytest.raises(ActionError, match="duration"):
        from_runbook("silence", {"model": "m1", "duration": "soon"})


def test_verify_sli_must_be_a_configured_sli() -> None:
    problems = config(verify={"sli": "errors"}, registry="registry").problems()
    assert (("actions", "verify", "sli"), "SLI 'errors' is not among `slis`") in [
        (loc, msg) for loc, msg, _ in problems
    ]


def test_closing_the_history_waits_for_an_observe_in_another_thread(tmp_path: Path) -> None:
    import threading

    history = AliasHistory(tmp_path / "store.db")
    models = [RegisteredModel(f"m{i}", {"champion": "1"}) for i in range(2000)]
    worker = threading.Thread(target=lambda: history.observe(models, "champion"))
    worker.start()
    history.close()  # must not pull the connection from under the running transaction
    worker.join()
    from console.sources.alias_history import HistoryError

    with pytest.raises(HistoryError):
        history.observe(models[:1], "champion")  # closed: a clear error, not a crash


@pytest.mark.parametrize("duration", [0, 0.0, -60, "0", float("inf"), float("nan"), 1e300])
async def test_a_silence_of_no_or_endless_length_is_refused_not_made_an_hour(
    world: dict[str, Any], duration: object
) -> None:
    action = build_action(
        world["ctx"],
        "silence",
        {"matchers": [{"name": "model", "value": "m"}], "comment": "c", "duration": duration},
    )
    with pytest.raises(ActionError, match="from 1m to 30d"):
        await action.plan()


def test_runbook_silence_duration_follows_the_same_rule() -> None:
    from console.actions.kinds import from_runbook

    for bad in ("0", "0m", "400d"):
        with pytest.raises(ActionError, match="from 1m to 30d"):
            from_runbook("silence", {"model": "m1", "duration": bad})
    assert from_runbook("silence", {"model": "m1", "duration": "30d"})[1]["duration"] == 30 * 86400


@pytest.mark.parametrize(
    ("raw", "seconds"), [("1m", 60.0), (" 2h ", 7200.0), (90, 90.0), ("30d", 2592000.0)]
)
def test_silence_durations_within_range(raw: object, seconds: float) -> None:
    from console.config.models import parse_silence_duration

    assert parse_silence_duration(raw) == seconds


# -- one plan, applied once ---------------------------------------------------------


def locked(world: dict[str, Any], tmp_path: Path) -> ActionContext:
    from dataclasses import replace

    from console.actions.locks import SqliteTargetLock

    ctx: ActionContext = world["ctx"]
    return replace(ctx, locks=SqliteTargetLock(tmp_path / "store.db"))


async def test_a_second_responder_waits_for_the_lock_then_is_refused_and_audited(
    world: dict[str, Any], tmp_path: Path
) -> None:
    from console.actions.locks import SqliteTargetLock

    ctx = locked(world, tmp_path)
    registry, audit = world["registry"], world["audit"]
    action = build_action(ctx, "rollback", {"model": "fraud-detector", "to": "3"})
    plan = await action.plan()  # both responders planned v4 → v3
    other = SqliteTargetLock(tmp_path / "store.db")
    held = other.try_acquire("alias:fraud-detector@champion", "bob@ops", 60)
    waited: list[str] = []

    def bob_applies_and_releases(text: str) -> None:
        waited.append(text)
        registry.aliases["fraud-detector"]["champion"] = "3"  # bob's rollback went first
        other.release(held)

    report = await Executor(ctx, audit).run(action, plan, on_wait=bob_applies_and_releases)
    assert waited and "bob@ops holds alias:fraud-detector@champion" in waited[0]
    assert report.outcome is Outcome.REFUSED and "now points at v3, not v4" in report.message
    assert kinds(audit) == ["intent", "refusal"] and audit.in_doubt() == []
    # The lock was given back: the next action takes it at once.
    assert other.holder("alias:fraud-detector@champion") is None


async def test_an_unusable_lock_refuses_and_audits_before_any_intent(
    world: dict[str, Any],
) -> None:
    from dataclasses import replace

    from console.actions.locks import UnavailableLock

    ctx = replace(world["ctx"], locks=UnavailableLock("cannot open the target locks in x"))
    action = build_action(ctx, "fallback", {"model": "fraud-detector", "on": True})
    plan = await action.plan()
    report = await Executor(ctx, world["audit"]).run(action, plan)
    assert report.outcome is Outcome.REFUSED
    assert "the lock on switch:fallback:fraud-detector cannot be taken" in report.message
    assert world["serving"].on == {}
    assert kinds(world["audit"]) == ["refusal"]
    assert world["audit"].entries()[0].body["error"] == report.message


async def test_another_writer_between_apply_and_read_back_is_a_conflict(
    world: dict[str, Any], tmp_path: Path
) -> None:
    ctx = locked(world, tmp_path)
    registry, audit = world["registry"], world["audit"]
    action = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await action.plan()

    def deploy_tool_moves_it() -> None:
        registry.aliases["fraud-detector"]["champion"] = "5"

    registry.after_set = deploy_tool_moves_it
    report = await Executor(ctx, audit).run(action, plan)
    assert report.outcome is Outcome.CONFLICT and not report.confirmed
    assert report.message.startswith("CONFLICT: fraud-detector@champion: v4 → v3 was applied")
    assert "{'version': '5'}" in report.message
    result = audit.entries()[-1]
    assert result.body["result"]["conflict"] is True
    assert "CONFLICT" in result.summary()
    # The other writer's version is not recorded as the console's move.
    assert all(
        not source.startswith("mlconsole:")
        for _, _, _, source in world["history"].changes("fraud-detector", "champion")
    )


async def test_a_version_rolled_back_from_is_skipped_only_until_the_next_deploy(
    world: dict[str, Any],
) -> None:
    registry, history = world["registry"], world["history"]
    moves = [("3", "poll"), ("4", "poll"), ("3", "mlconsole:ana@ops")]
    moves += [("2", "mlconsole:bob@ops")]  # a racing second rollback cascaded
    moves += [("3", "poll"), ("4", "poll")]  # fixed by hand; later v4 is deployed again
    for at, (version, source) in enumerate(moves):
        registry.aliases["fraud-detector"]["champion"] = version
        history.observe(await registry.models(), "champion", source=source, at=100.0 + at)
    plan = await build_action(world["ctx"], "rollback", {"model": "fraud-detector"}).plan()
    assert plan.summary() == "fraud-detector@champion: v4 → v3"


async def test_the_consoles_move_seen_first_by_another_poll_is_still_its_own(
    world: dict[str, Any],
) -> None:
    ctx, audit, registry, history = (
        world["ctx"],
        world["audit"],
        world["registry"],
        world["history"],
    )
    await deployed(world, "3", "4")

    def other_console_polls() -> None:  # between apply and read-back
        seen = RegisteredModel("fraud-detector", dict(registry.aliases["fraud-detector"]))
        history.observe([seen], "champion", source="poll")

    action = build_action(ctx, "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    registry.after_set = other_console_polls
    await Executor(ctx, audit).run(action, plan)
    assert history.changes("fraud-detector", "champion")[-1][1:4:2] == ("3", "mlconsole:ana@ops")
    again = await build_action(ctx, "rollback", {"model": "fraud-detector"}).plan()
    assert again.summary() == "fraud-detector@champion: v3 → v2"


def test_a_runbook_rollback_steps_version_is_its_target() -> None:
    from console.actions.kinds import from_runbook

    # artifact-mismatch rolls back to the version the alert expected, not the one before.
    assert from_runbook("rollback", {"model": "m", "version": "2"}) == (
        "rollback",
        {"model": "m", "to": "2"},
    )
    assert from_runbook("rollback", {"model": "m"}) == ("rollback", {"model": "m"})


class QueryLog(Metrics):
    """Metrics that remember which PromQL they were asked."""

    def __init__(self, values: list[float | None]) -> None:
        super().__init__(values)
        self.asked: list[str] = []

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        self.asked.append(promql)
        return await super().query(promql, at)


async def test_verification_watches_the_sli_that_paged_not_actions_verify(
    world: dict[str, Any],
) -> None:
    from console.actions.verify import FROM_ALERT, FROM_CONFIG, FROM_STEP, watch_target

    ctx: ActionContext = world["ctx"]
    metrics = QueryLog([0.9, 0.8, 0.3, 0.2])  # p99 latency falling under its 0.5 s objective
    ctx.adapters["prometheus"] = metrics  # type: ignore[index]
    latency = next(s for s in ctx.config.slis if s.name == "latency_p99")
    # A latency page whose fallback leaves the error ratio at 0 is judged on latency.
    target = watch_target(ctx.config, paged_sli="latency_p99", step_sli="drift_psi")
    assert (target.sli, target.origin, target.query) == ("latency_p99", FROM_ALERT, latency.query)
    clock = iter(range(100))
    recovery = await watch_recovery(
        ctx, "fraud-detector", target, sleep=_no_sleep, clock=lambda: float(next(clock))
    )
    assert recovery.recovered and recovery.sli == "latency_p99"
    # Each read asks for the watched model's series alone, not every model's.
    assert set(metrics.asked) == {select_series(latency.query, "model", "fraud-detector")}
    assert "latency_p99 = 0.2" in recovery.line() and FROM_ALERT in recovery.line()
    assert recovery.as_dict()["sli"] == "latency_p99"
    assert recovery.as_dict()["origin"] == FROM_ALERT
    # No sli label: the runbook step's SLI; neither: actions.verify.sli.
    assert watch_target(ctx.config, step_sli="drift_psi").sli == "drift_psi"
    assert watch_target(ctx.config, step_sli="drift_psi").origin == FROM_STEP
    assert (watch_target(ctx.config).sli, watch_target(ctx.config).origin) == (
        ctx.config.actions.verify.sli,
        FROM_CONFIG,
    )


def test_a_latency_page_with_an_slo_names_the_ratio_it_is_judged_on() -> None:
    from console.actions.verify import Recovery, watch_target
    from console.config.models import SloConfig

    base = config()
    slis = [
        s.model_copy(
            update={"slo": SloConfig(target=0.99, error_ratio_query="mlc:latency_slow_ratio")}
        )
        if s.name == "latency_p99"
        else s
        for s in base.slis
    ]
    target = watch_target(base.model_copy(update={"slis": slis}), paged_sli="latency_p99")
    # The threshold is the error budget rate of the SLO's bad-event ratio, not of the
    # seconds the SLI itself reads: the plan says which query it holds against.
    assert target.query == "mlc:latency_slow_ratio"
    assert target.describe().startswith("latency_p99 (bad-event ratio `mlc:latency_slow_ratio`)")
    assert "good below 0.01" in target.describe()
    assert target.good is not None and target.good(0.005) and not target.good(0.2)
    recovery = Recovery(
        "fraud-detector",
        target.sli,
        target.query,
        target.threshold,
        True,
        0.0,
        3.0,
        2,
        measure=target.measure,
    )
    assert recovery.line().startswith(
        "RECOVERED: fraud-detector latency_p99 bad-event ratio `mlc:latency_slow_ratio` = 0 "
    )


async def test_a_page_with_no_sli_to_watch_is_never_reported_recovered(
    world: dict[str, Any],
) -> None:
    from console.actions.verify import watch_target

    ctx: ActionContext = world["ctx"]
    metrics = QueryLog([0.0])  # every other SLI looks perfect
    ctx.adapters["prometheus"] = metrics  # type: ignore[index]
    target = watch_target(ctx.config, paged_sli="freshness")  # not among this config's slis
    assert target.problem and "'freshness', which is not among `slis`" in target.problem
    recovery = await watch_recovery(ctx, "fraud-detector", target, sleep=_no_sleep)
    assert not recovery.recovered and not recovery.watched and metrics.asked == []
    assert recovery.line().startswith("NOT VERIFIED: fraud-detector: nothing was watched: ")
    assert "freshness" in recovery.line() and "RECOVERED:" not in recovery.line()
    assert recovery.as_dict()["watched"] is False


async def test_a_watch_with_no_data_for_the_model_says_no_data_not_recovered(
    world: dict[str, Any],
) -> None:
    from console.actions.verify import watch_target

    ctx: ActionContext = world["ctx"]
    ctx.adapters["prometheus"] = QueryLog([None])  # type: ignore[index]
    clock = iter(range(0, 100, 5))
    recovery = await watch_recovery(
        ctx,
        "fraud-detector",
        watch_target(ctx.config, paged_sli="drift_psi"),
        sleep=_no_sleep,
        clock=lambda: float(next(clock)),
    )
    assert not recovery.recovered and recovery.watched
    assert recovery.line().startswith("NOT RECOVERED: fraud-detector drift_psi = no data")


def test_an_audited_verdict_names_the_sli_it_watched(world: dict[str, Any]) -> None:
    from console.actions.verify import FROM_ALERT, Recovery

    audit: AuditLog = world["audit"]
    seen = Recovery("fraud-detector", "latency_p99", "q", "good when < 0.5", True, 0.2, 6.0, 3)
    unseen = Recovery(
        "fraud-detector", "freshness", "", "", False, None, 0.0, 0,
        error="not among `slis`", origin=FROM_ALERT, watched=False,
    )  # fmt: skip
    for recovery in (seen, unseen):
        audit.append(
            "verify", actor="ana@ops", action="fallback", params={}, result=recovery.as_dict()
        )
    summaries = [e.summary() for e in audit.entries()]
    assert "— recovered on latency_p99" in summaries[0]
    assert "— NOT verified: nothing was watched" in summaries[1]
    assert "recovered" not in summaries[1].replace("NOT verified", "")


async def test_audit_writes_wait_for_another_process_off_the_event_loop(
    world: dict[str, Any],
) -> None:
    """An append waits (SQLite's busy timeout) while another console writes the shared
    audit log: the wait is in a thread, so the keys (the event loop) go on."""
    from tests.sqlite_writer import another_writer

    audit: AuditLog = world["audit"]
    action = build_action(world["ctx"], "rollback", {"model": "fraud-detector"})
    plan = await action.plan()
    with another_writer(audit.path) as finish_writing:
        running = asyncio.create_task(Executor(world["ctx"], audit).run(action, plan))
        await asyncio.sleep(0)  # the run starts, and its intent waits for the log
        # The loop runs meanwhile: this ends the other write. On a loop blocked by the
        # append, it would run only after SQLite gave up (nothing would run).
        finish_writing()
        report = await running
    assert report.outcome is Outcome.APPLIED
    assert kinds(audit) == ["intent", "result"]
