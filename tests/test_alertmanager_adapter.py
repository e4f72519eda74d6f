"""Alertmanager adapter against recorded API v2 answers and injected faults (respx)."""

from __future__ import annotations

import httpx
import pytest
import respx

from adapters.alertmanager import AlertmanagerAdapter
from adapters.base import AdapterError, SourceSettings

URL = "http://am.test:9093"
ALERT = {
    "labels": {"alertname": "ModelErrorBudgetBurn", "model": "fraud-detector", "severity": "page"},
    "annotations": {"summary": "fraud-detector burns its error budget 40x"},
    "startsAt": "2026-11-23T20:00:00.123Z",
    "endsAt": "2026-11-23T20:10:00Z",
    "updatedAt": "2026-11-23T20:01:00Z",
    "fingerprint": "abc123",
    "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=x",
    "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    "receivers": [{"name": "console"}],
}


def adapter(**overrides: object) -> AlertmanagerAdapter:
    settings = SourceSettings.model_validate(
        {"url": URL, "timeout": 0.5, "retries": 1, "backoff": 0, **overrides}
    )
    return AlertmanagerAdapter("alertmanager", settings)


@respx.mock
async def test_alerts_are_parsed() -> None:
    respx.get(f"{URL}/api/v2/alerts").respond(json=[ALERT])
    (alert,) = await adapter().alerts()
    assert alert.name == "ModelErrorBudgetBurn" and alert.model == "fraud-detector"
    assert alert.state == "active" and alert.severity == "page"
    assert alert.starts_at.isoformat() == "2026-11-23T20:00:00.123000+00:00"
    assert alert.summary.startswith("fraud-detector")


@respx.mock
async def test_groups_and_silences() -> None:
    respx.get(f"{URL}/api/v2/alerts/groups").respond(
        json=[{"labels": {"model": "fraud-detector"}, "alerts": [ALERT], "receiver": {}}]
    )
    respx.get(f"{URL}/api/v2/silences").respond(
        json=[
            {
                "id": "s1",
                "matchers": [{"name": "model", "value": "x", "isRegex": False}],
                "startsAt": "2026-11-23T20:00:00Z",
                "endsAt": "2026-11-23T21:00:00Z",
                "createdBy": "oncall",
                "comment": "deploying",
                "status": {"state": "active"},
            }
        ]
    )
    am = adapter()
    ((labels, alerts),) = await am.groups()
    assert labels == {"model": "fraud-detector"} and alerts[0].fingerprint == "abc123"
    (silence,) = await am.silences()
    assert silence.created_by == "oncall" and silence.state == "active"


@respx.mock
async def test_500_retries_then_fails_clearly() -> None:
    route = respx.get(f"{URL}/api/v2/alerts").respond(500, text="internal")
    with pytest.raises(AdapterError, match="HTTP 500") as info:
        await adapter(retries=2).alerts()
    assert route.call_count == 3
    assert info.value.source == "alertmanager" and URL in str(info.value)


@respx.mock
async def test_503_then_ok_recovers() -> None:
    respx.get(f"{URL}/api/v2/alerts").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=[ALERT])]
    )
    assert len(await adapter().alerts()) == 1


@respx.mock
async def test_timeout_is_a_clear_error() -> None:
    respx.get(f"{URL}/api/v2/alerts").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(AdapterError, match=r"timed out after 0\.5s \(2 attempts\)"):
        await adapter().alerts()


@respx.mock
async def test_connection_error_is_a_clear_error() -> None:
    respx.get(f"{URL}/api/v2/alerts").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(AdapterError, match="cannot connect"):
        await adapter().alerts()


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, text="<html>proxy</html>"),
        httpx.Response(200, json={"a": 1}),
        httpx.Response(200, json=[{"labels": {}}]),
        httpx.Response(200, json=[42]),
    ],
    ids=["html", "object", "missing-fields", "not-an-object"],
)
@respx.mock
async def test_malformed_json_is_a_clear_error(reply: httpx.Response) -> None:
    respx.get(f"{URL}/api/v2/alerts").mock(return_value=reply)
    with pytest.raises(AdapterError, match="malformed response"):
        await adapter().alerts()


@respx.mock
async def test_auth_headers_are_sent() -> None:
    route = respx.get(f"{URL}/api/v2/alerts").respond(json=[])
    await adapter(
        headers={"X-Scope-OrgID": "team"}, basic_auth={"username": "u", "password": "p"}
    ).alerts()
    request = route.calls.last.request
    assert request.headers["X-Scope-OrgID"] == "team"
    assert request.headers["Authorization"].startswith("Basic ")
