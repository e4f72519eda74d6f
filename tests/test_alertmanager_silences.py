"""Alertmanager silences: create and expire, against recorded answers and the real lab."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx

from adapters.alertmanager import AlertmanagerAdapter, rfc3339
from adapters.base import AdapterError
from adapters.http import HttpError
from adapters.settings import SourceSettings

URL = "http://am.test:9093"
SILENCE_ID = "200181fa-c276-4e2b-8a13-2b58ecd2fc17"
MATCHERS = ({"name": "model", "value": "fraud-detector", "isRegex": False, "isEqual": True},)
CEST = timezone(timedelta(hours=2))
START = datetime(2026, 11, 23, 22, 0, 0, tzinfo=CEST)
END = START + timedelta(hours=1)


def adapter(url: str = URL, **overrides: object) -> AlertmanagerAdapter:
    settings = SourceSettings.model_validate(
        {"url": url, "timeout": 2, "retries": 2, "backoff": 0, **overrides}
    )
    return AlertmanagerAdapter("alertmanager", settings)


async def create(am: AlertmanagerAdapter) -> str:
    return await am.create_silence(MATCHERS, START, END, "oncall@example", "rolling back")


@respx.mock
async def test_create_silence_posts_the_v2_shape_in_utc() -> None:
    route = respx.post(f"{URL}/api/v2/silences").respond(json={"silenceID": SILENCE_ID})
    assert await create(adapter()) == SILENCE_ID
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "matchers": list(MATCHERS),
        "startsAt": "2026-11-23T20:00:00.000Z",
        "endsAt": "2026-11-23T21:00:00.000Z",
        "createdBy": "oncall@example",
        "comment": "rolling back",
    }


def test_times_are_rfc3339_utc_and_naive_times_are_refused() -> None:
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"
    with pytest.raises(ValueError, match="no time zone"):
        rfc3339(datetime(2026, 1, 2))


@respx.mock
async def test_expire_silence_deletes_the_singular_path() -> None:
    route = respx.delete(f"{URL}/api/v2/silence/{SILENCE_ID}").respond(200)
    await adapter().expire_silence(SILENCE_ID)
    assert route.call_count == 1


@respx.mock
async def test_expire_is_retried_on_5xx_and_says_what_alertmanager_said() -> None:
    route = respx.delete(f"{URL}/api/v2/silence/{SILENCE_ID}").respond(
        500, json="silence not found"
    )
    with pytest.raises(AdapterError, match=r"HTTP 500: silence not found \(3 attempts\)"):
        await adapter().expire_silence(SILENCE_ID)
    assert route.call_count == 3


@respx.mock
async def test_create_is_not_resent_after_a_read_timeout() -> None:
    route = respx.post(f"{URL}/api/v2/silences").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json={"silenceID": "2nd"})]
    )
    with pytest.raises(HttpError, match="may have been applied") as info:
        await create(adapter())
    assert route.call_count == 1 and info.value.in_doubt


@respx.mock
async def test_create_is_not_resent_after_a_500() -> None:
    route = respx.post(f"{URL}/api/v2/silences").respond(500, json="store failed")
    with pytest.raises(HttpError, match="HTTP 500: store failed; it may have been applied"):
        await create(adapter())
    assert route.call_count == 1


@respx.mock
async def test_create_is_resent_when_it_never_connected() -> None:
    route = respx.post(f"{URL}/api/v2/silences").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"silenceID": "s"})]
    )
    assert await create(adapter()) == "s"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "reply",
    [httpx.Response(200, json={}), httpx.Response(200, json=["x"]), httpx.Response(200, text="ok")],
    ids=["no-id", "list", "not-json"],
)
@respx.mock
async def test_create_with_a_malformed_answer_is_a_clear_error(reply: httpx.Response) -> None:
    respx.post(f"{URL}/api/v2/silences").mock(return_value=reply)
    with pytest.raises(AdapterError, match="malformed response"):
        await create(adapter())


@respx.mock
async def test_bad_request_keeps_alertmanager_words() -> None:
    respx.post(f"{URL}/api/v2/silences").respond(
        400, json="Failed to create silence: start time must be before end time"
    )
    with pytest.raises(
        AdapterError, match="HTTP 400: Failed to create silence: start time"
    ) as info:
        await create(adapter())
    assert "\n" not in str(info.value)


# -- against the lab's real Alertmanager ---------------------------------------------

DEADLINE = 30.0


async def poll(check: Any, what: str) -> Any:
    """Call async ``check`` until it returns something truthy, or fail after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.mark.integration
async def test_silence_suppresses_a_real_alert_then_expires(lab: Any) -> None:
    am = adapter(lab.alertmanager_url)
    test_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "ConsoleSilenceTest", "test_id": test_id, "severity": "none"},
        "annotations": {"summary": "posted by the silence test"},
        "startsAt": rfc3339(now),
        "endsAt": rfc3339(now + timedelta(minutes=10)),
    }
    async with httpx.AsyncClient(base_url=lab.alertmanager_url) as raw:
        (await raw.post("/api/v2/alerts", json=[alert])).raise_for_status()
        try:

            async def ours(state: str) -> Any:
                for record in await am.alerts():
                    if record.labels.get("test_id") == test_id and record.state == state:
                        return record
                return None

            await poll(lambda: ours("active"), "the test alert to arrive")
            matchers = ({"name": "test_id", "value": test_id, "isRegex": False, "isEqual": True},)
            silence_id = await am.create_silence(
                matchers, now - timedelta(seconds=5), now + timedelta(minutes=10), "test", "test"
            )
            suppressed = await poll(lambda: ours("suppressed"), "the alert to be suppressed")
            assert silence_id in suppressed.silenced_by

            await am.expire_silence(silence_id)

            async def expired() -> bool:
                states = {s.id: s.state for s in await am.silences()}
                return states.get(silence_id) == "expired"

            await poll(expired, "the silence to expire")
            await poll(lambda: ours("active"), "the alert to be active again")
            await am.expire_silence(silence_id)  # expiring twice is harmless
        finally:
            alert["endsAt"] = rfc3339(datetime.now(UTC))  # resolve it for the other tests
            await raw.post("/api/v2/alerts", json=[alert])
            await am.aclose()
