"""One redaction for every adapter's errors: a server that echoes the credentials it
was sent (as sent, repr'd, JSON-escaped, URL-encoded, Basic-decoded) never gets them
into an error, the snapshot, the store, ``status``, ``incident show`` or an export."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from adapters.alertmanager import AlertmanagerAdapter
from adapters.base import Adapter, AdapterError
from adapters.http_switch import HttpSwitchAdapter, HttpSwitchSettings
from adapters.mlflow import MlflowAdapter
from adapters.prometheus import PrometheusAdapter
from adapters.records import AlertRecord
from adapters.redaction import Redactor
from adapters.settings import SourceSettings
from console.cli.main import main
from tests.faultserver import Reply, fault_server
from tests.test_http_switch import OPTIONS

TOKEN = "s3cr3t/tok+en=42"
CRLF_TOKEN = TOKEN + "\r\n"
USER, PASSWORD = "bob", "p@ss:w/rd+99"
API_KEY = "key-0f-the-kingdom"


def forms(secret: str) -> list[str]:
    """Every way ``secret`` could show up in an echo."""
    stripped = secret.strip()
    return [
        stripped,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        quote(stripped, safe=""),
        quote_plus(stripped),
        base64.b64encode(stripped.encode()).decode(),
    ]


SECRETS = [
    *forms(CRLF_TOKEN),
    *forms(PASSWORD),
    *forms(API_KEY),
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
]


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {text!r}"


# -- the one redaction -------------------------------------------------------------------


def test_every_form_of_a_secret_is_masked() -> None:
    redact = Redactor([CRLF_TOKEN, PASSWORD])
    for form in [*forms(CRLF_TOKEN), *forms(PASSWORD), CRLF_TOKEN, repr(CRLF_TOKEN)]:
        assert redact(f"echo [{form}]") == "echo [***]" or "***" in redact(f"echo [{form}]")
        assert_no_secret(redact(f"echo [{form}]"))
    assert redact(f"see http://{USER}:{PASSWORD}@prom.test/x") == "see http://prom.test/x"
    assert redact("nothing secret here") == "nothing secret here"


def test_a_credential_in_the_urls_query_is_masked() -> None:
    from adapters.redaction import settings_secrets

    settings = SourceSettings.model_validate(
        {"url": "http://prom.test/prefix?api_token=q-s3cret-value&org=acme-corp"}
    )
    redact = Redactor(settings_secrets(settings))
    said = redact("GET http://prom.test/prefix?api_token=q-s3cret-value&org=acme-corp: 502")
    assert "q-s3cret-value" not in said and "api_token=***" in said
    assert "org=acme-corp" in said  # a parameter named for no credential is kept


def test_a_crlf_token_is_sent_without_its_line_ending() -> None:
    settings = SourceSettings.model_validate(
        {"url": "http://prom.test", "bearer_token": CRLF_TOKEN, "headers": {"X-Api-Key": API_KEY}}
    )
    assert settings.http_headers() == {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": API_KEY}


# -- every adapter -----------------------------------------------------------------------

CREDENTIALS: dict[str, Callable[[str], dict[str, Any]]] = {
    "bearer token from a CRLF file": lambda url: {"url": url, "bearer_token": CRLF_TOKEN},
    "basic auth": lambda url: {
        "url": url,
        "basic_auth": {"username": USER, "password": PASSWORD},
    },
    "api key header": lambda url: {"url": url, "headers": {"X-Api-Key": API_KEY}},
    "password in the url": lambda url: {
        "url": url.replace("http://", f"http://{USER}:{quote(PASSWORD, safe='')}@")
    },
}

Call = Callable[[Adapter], Awaitable[Any]]
ADAPTERS: dict[str, tuple[Callable[[dict[str, Any]], Adapter], Call]] = {
    "prometheus": (
        lambda s: PrometheusAdapter("prometheus", SourceSettings.model_validate(s)),
        lambda a: a.query("up"),  # type: ignore[attr-defined]
    ),
    "alertmanager": (
        lambda s: AlertmanagerAdapter("alertmanager", SourceSettings.model_validate(s)),
        lambda a: a.alerts(),  # type: ignore[attr-defined]
    ),
    "mlflow": (
        lambda s: MlflowAdapter("mlflow", SourceSettings.model_validate(s)),
        lambda a: a.models(),  # type: ignore[attr-defined]
    ),
    "http-switch": (
        lambda s: HttpSwitchAdapter(
            "fallback", HttpSwitchSettings.model_validate({**s, **OPTIONS})
        ),
        lambda a: a.state("fraud-detector"),  # type: ignore[attr-defined]
    ),
}


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
@pytest.mark.parametrize("kind", sorted(ADAPTERS))
async def test_an_echoed_credential_never_reaches_an_error(kind: str, credential: str) -> None:
    build, call = ADAPTERS[kind]
    with fault_server(Reply(status=500, echo=True)) as server:
        settings = {**CREDENTIALS[credential](server.url), "retries": 0, "timeout": 2}
        adapter = build(settings)
        try:
            with pytest.raises(AdapterError) as info:
                await call(adapter)
        finally:
            await adapter.aclose()
    error = info.value
    shown = " ".join((str(error), error.summary(), error.message, error.url, error.hint))
    assert_no_secret(shown)
    assert "***" in shown or kind == "http-switch"  # every echo was masked, not dropped
    assert "500" in shown


async def test_a_third_party_adapter_is_redacted_too() -> None:
    """The base class redacts whatever an adapter raises, whoever wrote it."""
    from adapters.base import MetricsAdapter
    from adapters.records import QueryResult, RangeResult

    class Leaky(MetricsAdapter):
        async def query(self, promql: str, at: float | None = None) -> QueryResult:
            raise RuntimeError(f"refused header {self.settings.http_headers()!r}")

        async def query_range(
            self, promql: str, start: float, end: float, step: float
        ) -> RangeResult:
            raise AdapterError(self.name, f"echo: Bearer {TOKEN}", url=f"http://x/?t={TOKEN}")

    leaky = Leaky(
        "vm",
        SourceSettings.model_validate(
            CREDENTIALS["bearer token from a CRLF file"]("http://vm.test")
        ),
    )
    with pytest.raises(AdapterError) as info:
        await leaky.query("up")
    assert_no_secret(str(info.value))
    assert "unexpected RuntimeError" in str(info.value)
    with pytest.raises(AdapterError) as info:
        await leaky.query_range("up", 0, 1, 1)
    assert_no_secret(str(info.value) + info.value.url)


# -- through the real path: status, the store, incident show, both exports -------------


async def check_once(config: Any, alert: AlertRecord, incident: int) -> list[Any]:
    """Walk the runbook's check for ``alert`` against the configured Prometheus; the
    errors its evidence records (in the store)."""
    from console.sources.build import build_adapters
    from console.triage.triage import open_triage

    adapters, _ = build_adapters(config)
    triage = open_triage(config, adapters["prometheus"])  # type: ignore[arg-type]
    try:
        walk = triage.walk_for(triage.runbooks["echo-check"], alert, incident)
        await walk.advance(actor="ann")
        return [e.outputs.get("error", "") for e in walk.evidence]
    finally:
        triage.store.close()
        for adapter in adapters.values():
            await adapter.aclose()


RUNBOOK = """\
id: echo-check
title: A check against the echoing Prometheus
version: 1
labels: [model]
match: [{alertname: ModelErrorBudgetBurn}]
steps:
  - id: errors
    kind: check
    query: 'mlc:error_ratio:rate1m{model="{{ labels.model }}"}'
    condition: "> 0.05"
    on_true: done
    on_false: done
  - id: done
    kind: conclude
    cause: unknown
    summary: checked
"""


def test_an_echoed_token_reaches_no_output_and_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.config.loader import load_config
    from console.incidents.book import IncidentBook

    monkeypatch.setenv("PROM_TOKEN", CRLF_TOKEN)
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "echo.yaml").write_text(RUNBOOK, encoding="utf-8")
    store = tmp_path / "store.db"
    with fault_server(Reply(status=500, echo=True)) as server:
        config_path = tmp_path / "mlconsole.yaml"
        config_path.write_text(
            f"""\
version: 1
sources:
  prometheus:
    type: prometheus
    url: {server.url}
    bearer_token: ${{PROM_TOKEN}}
    retries: 0
    timeout: 2
slis:
  - name: error_ratio
    query: mlc:error_ratio:rate1m
    objective: "< 0.01"
runbooks:
  paths: [{tmp_path / "runbooks"}]
store:
  path: {store}
""",
            encoding="utf-8",
        )
        argv = ["-c", str(config_path), "--actor", "ann"]

        # status: the snapshot's source error, on screen.
        assert main([*argv, "status"]) == 3
        out, err = capsys.readouterr()
        assert "HTTP 500" in out + err
        assert_no_secret(out + err)

        # The store: a runbook check's evidence holds the error.
        config = load_config(config_path)
        alert = AlertRecord(
            fingerprint="fp-1",
            labels={"alertname": "ModelErrorBudgetBurn", "model": "fraud-detector"},
            annotations={"summary": "burns"},
            starts_at=datetime.fromtimestamp(1_700_000_000, UTC),
            ends_at=None,
            updated_at=None,
            state="active",
        )
        book = IncidentBook(store)
        try:
            incident = book.open([alert], model_label="model", actor="ann")
        finally:
            book.close()
        errors = asyncio.run(check_once(config, alert, incident.number))
        assert any("HTTP 500" in str(e) and "***" in str(e) for e in errors), errors

    db = sqlite3.connect(store)
    try:
        rows = db.execute("SELECT * FROM runbook_evidence").fetchall()
    finally:
        db.close()
    assert any("***" in str(row) for row in rows)
    assert_no_secret(str(rows) + store.read_bytes().decode("utf-8", "replace"))

    # incident show and both exports carry the evidence, never the token.
    for command in (
        ["incident", "show", incident.id],
        ["incident", "show", incident.id, "--json"],
        ["export", incident.id, "--format", "md"],
        ["export", incident.id, "--format", "json"],
    ):
        assert main([*argv, *command]) == 0, command
        out, err = capsys.readouterr()
        assert_no_secret(out + err)
    assert "***" in out  # the JSON export holds the (redacted) check error


async def test_prometheus_warnings_are_redacted() -> None:
    """Warnings (partial data) are shown beside the values: they pass the redaction too."""
    body = json.dumps(
        {
            "status": "success",
            "data": {"resultType": "vector", "result": []},
            "warnings": [f"upstream said: Bearer {TOKEN}"],
        }
    ).encode()
    with fault_server(Reply(body=body)) as server:
        adapter = PrometheusAdapter(
            "prometheus",
            SourceSettings.model_validate({"url": server.url, "bearer_token": CRLF_TOKEN}),
        )
        try:
            result = await adapter.query("up")
        finally:
            await adapter.aclose()
    assert result.warnings == ("upstream said: Bearer ***",)


@pytest.mark.parametrize("credential", sorted(CREDENTIALS))
async def test_a_parse_error_that_echoes_a_credential_is_redacted(credential: str) -> None:
    """check-config and runbook validate quote Prometheus' parse error: a server that
    echoes the request's credentials in it shows them masked there too."""
    from console.triage.promql_check import Expression, check_with_prometheus

    with fault_server(Reply(status=400, echo=True, error_type="bad_data")) as server:
        settings = {**CREDENTIALS[credential](server.url), "retries": 0, "timeout": 2}
        adapter = PrometheusAdapter("prometheus", SourceSettings.model_validate(settings))
        try:
            error = await adapter.parse_error("rate(x[5m]")
            report = await check_with_prometheus(
                [Expression("config.yaml", 3, 12, "slis[0].query", "rate(x[5m]")], adapter
            )
        finally:
            await adapter.aclose()
    assert error is not None
    assert_no_secret(error)
    assert "***" in error  # masked, not dropped
    [issue] = report.issues
    assert_no_secret(str(issue.message))
