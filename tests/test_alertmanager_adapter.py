"""Alertmanager adapter and the shared HTTP client, against recorded answers and faults (respx)."""

from __future__ import annotations

import base64

import httpx
import pytest
import respx

from adapters.alertmanager import AlertmanagerAdapter
from adapters.base import AdapterError
from adapters.http import HttpClient, HttpError
from adapters.redaction import Redactor, redact_url, settings_secrets
from adapters.settings import SourceSettings

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


# -- the shared HTTP client (adapters.http): retry policy and redaction --------------

TOKEN = "s3cr3t-token-do-not-show"
PASSWORD = "hunter2-password"


def client(**overrides: object) -> HttpClient:
    settings = SourceSettings.model_validate(
        {"url": URL, "timeout": 0.5, "retries": 2, "backoff": 0, **overrides}
    )
    return HttpClient("am", settings, system="Alertmanager")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@respx.mock
async def test_idempotent_requests_are_retried_after_read_timeout_and_5xx(method: str) -> None:
    route = respx.route(method=method, url=f"{URL}/x").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(503), httpx.Response(200, json=[1])]
    )
    assert await client().request_json(method, "/x") == [1]
    assert route.call_count == 3


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), httpx.WriteTimeout("w")],
    ids=["read-timeout", "dropped", "write-timeout"],
)
@respx.mock
async def test_post_is_never_resent_once_it_may_have_arrived(fault: Exception) -> None:
    route = respx.post(f"{URL}/x").mock(side_effect=[fault, httpx.Response(200, json={})])
    with pytest.raises(HttpError, match="may have been applied") as info:
        await client().request_json("POST", "/x", json={"a": 1})
    assert route.call_count == 1
    assert info.value.in_doubt and "read the state back" in info.value.hint


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@respx.mock
async def test_post_is_not_retried_after_a_5xx(status: int) -> None:
    route = respx.post(f"{URL}/x").respond(status, text="oops")
    with pytest.raises(HttpError, match=f"HTTP {status}") as info:
        await client().request_json("POST", "/x", json={})
    assert route.call_count == 1
    assert info.value.in_doubt and info.value.status == status


@respx.mock
async def test_post_is_not_retried_after_a_429_or_4xx_and_is_not_in_doubt() -> None:
    route = respx.post(f"{URL}/x").respond(429)
    with pytest.raises(HttpError, match="HTTP 429") as info:
        await client().request_json("POST", "/x", json={})
    assert route.call_count == 1 and not info.value.in_doubt


@pytest.mark.parametrize(
    "fault",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("syn"), httpx.PoolTimeout("pool")],
    ids=["connect-error", "connect-timeout", "pool-timeout"],
)
@respx.mock
async def test_post_is_retried_when_it_never_left(fault: Exception) -> None:
    route = respx.post(f"{URL}/x").mock(side_effect=[fault, httpx.Response(200, json={"ok": 1})])
    assert await client().request_json("POST", "/x", json={}) == {"ok": 1}
    assert route.call_count == 2


@respx.mock
async def test_post_that_never_connects_is_not_in_doubt() -> None:
    route = respx.post(f"{URL}/x").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(HttpError, match=r"cannot connect .*3 attempts") as info:
        await client().request_json("POST", "/x", json={})
    assert route.call_count == 3
    assert not info.value.in_doubt and info.value.hint == "is Alertmanager running and reachable?"


@respx.mock
async def test_empty_answer_is_none_and_redirect_is_an_error() -> None:
    respx.delete(f"{URL}/x").respond(200)
    assert await client().request_json("DELETE", "/x") is None
    respx.get(f"{URL}/y").respond(302, headers={"Location": "https://sso.test/login"})
    with pytest.raises(HttpError, match=r"redirected to https://sso\.test/login"):
        await client().request_json("GET", "/y")


@respx.mock
async def test_401_names_the_credentials() -> None:
    respx.get(f"{URL}/x").respond(401, text="no")
    with pytest.raises(HttpError, match="HTTP 401") as info:
        await client().request_json("GET", "/x")
    assert "Alertmanager refused the credentials" in info.value.hint


def test_redact_masks_secrets_and_url_userinfo() -> None:
    text = f"failed https://bob:{PASSWORD}@am.test/x with Bearer {TOKEN} and ab"
    out = Redactor([TOKEN, PASSWORD, "ab"])(text)
    assert TOKEN not in out and PASSWORD not in out and "bob" not in out
    assert "https://am.test/x" in out and "and ab" in out  # too short to be worth masking
    assert redact_url(f"http://bob:{PASSWORD}@am.test:9093/p?q=1") == "http://am.test:9093/p?q=1"
    assert redact_url("http://am.test/p") == "http://am.test/p"


def test_every_credential_form_is_known_as_a_secret() -> None:
    settings = SourceSettings.model_validate(
        {
            "url": f"http://bob:{PASSWORD}@am.test",
            "bearer_token": TOKEN,
            "headers": {"X-Api-Key": "key-12345", "Authorization": "Token tok-24680"},
            "basic_auth": {"username": "u", "password": "pw-67890"},
        }
    )
    secrets = settings_secrets(settings)
    assert {TOKEN, PASSWORD, "key-12345", "Token tok-24680", "pw-67890"} <= set(secrets)
    assert base64.b64encode(b"u:pw-67890").decode() in secrets
    redact = Redactor(secrets)
    for value in (TOKEN, PASSWORD, "key-12345", "tok-24680", "pw-67890"):
        assert redact(f"echo: {value}.") == "echo: ***."


@respx.mock
async def test_a_token_never_appears_in_an_error() -> None:
    # A server (or a proxy) that echoes the request's credentials back in its error.
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text=f"bad auth: {request.headers['Authorization']}")

    respx.get(f"{URL}/api/v2/alerts").mock(side_effect=echo)
    with pytest.raises(AdapterError) as info:
        await adapter(bearer_token=TOKEN, retries=0).alerts()
    error = info.value
    assert TOKEN not in str(error) and TOKEN not in error.message and "***" in error.message
    assert error.url == f"{URL}/api/v2/alerts"


@respx.mock
async def test_url_credentials_never_appear_in_an_error() -> None:
    respx.get("http://am.test:9093/api/v2/alerts").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(AdapterError) as info:
        await adapter(url=f"http://bob:{PASSWORD}@am.test:9093", retries=0).alerts()
    assert PASSWORD not in str(info.value) and "bob" not in str(info.value)
    assert info.value.url == "http://am.test:9093/api/v2/alerts"


@respx.mock
async def test_an_undecodable_answer_is_an_adapter_error() -> None:
    garbled = httpx.Response(
        200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
    )
    respx.get(f"{URL}/x").mock(return_value=garbled)
    with pytest.raises(HttpError, match="request failed \\(DecodingError"):
        await client().request_json("GET", "/x")


@respx.mock
async def test_a_token_cut_by_the_excerpt_leaves_no_prefix() -> None:
    respx.get(f"{URL}/api/v2/alerts").respond(500, text="x" * 190 + TOKEN)
    with pytest.raises(AdapterError) as info:
        await adapter(bearer_token=TOKEN, retries=0).alerts()
    assert TOKEN[:6] not in str(info.value)


@respx.mock
async def test_alerts_name_their_model_by_the_configured_model_label() -> None:
    from console.config.models import Config
    from console.sources.build import build_adapters

    config = Config.model_validate(
        {
            "model_label": "service",
            "sources": {"alertmanager": {"type": "alertmanager", "url": URL}},
            "slis": [],
        }
    )
    adapters, failures = build_adapters(config)
    assert failures == {}
    labels = {"alertname": "ModelErrorBudgetBurn", "service": "fraud-detector"}
    respx.get(f"{URL}/api/v2/alerts").respond(json=[{**ALERT, "labels": labels}])
    (alert,) = await adapters["alertmanager"].alerts()  # type: ignore[attr-defined]
    assert alert.model == "fraud-detector"


@respx.mock
async def test_the_alerts_are_parsed_off_the_event_loop_after_giving_way_to_keys() -> None:
    """The answer of 500 alerts is read in the client's worker thread, and only once
    the console's keys let it (``give_way``): never on the loop the UI runs on."""
    import threading

    respx.get(f"{URL}/api/v2/alerts").respond(json=[ALERT])
    am = adapter()
    gave_way: list[int] = []
    am.give_way = lambda: gave_way.append(threading.get_ident())
    (alert,) = await am.alerts()
    assert alert.fingerprint == "abc123"
    assert len(gave_way) == 1 and gave_way[0] != threading.get_ident()
    await am.aclose()


@respx.mock
async def test_a_call_in_flight_when_the_client_closes_is_given_up_at_once() -> None:
    """Closing does not wait for a request that has not answered: its caller is told."""
    import asyncio
    import threading

    started, answered = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        answered.wait(5)
        return httpx.Response(200, json=[])

    respx.get(f"{URL}/api/v2/alerts").mock(side_effect=slow)
    am = adapter(timeout=10)
    call = asyncio.ensure_future(am.alerts())
    assert await asyncio.to_thread(started.wait, 5)
    await am.aclose()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(call, timeout=2)
    answered.set()
