"""Alertmanager API v2: alerts, alert groups and silences (read-only here).

The API returns bare JSON (no envelope). Requests go through one shared
``httpx.AsyncClient`` with the source's timeout, headers, auth and TLS, and are
retried with exponential backoff on connection errors, timeouts, 429 and 5xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from adapters.base import (
    AlertRecord,
    AlertsAdapter,
    SilenceRecord,
    SourceSettings,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def parse_time(raw: Any) -> datetime | None:
    """Alertmanager's RFC 3339 times, or None for a missing or zero time."""
    if not isinstance(raw, str) or not raw or raw.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _strings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def parse_alert(raw: Any) -> AlertRecord:
    """One API v2 alert; raises ValueError if a required field is missing."""
    if not isinstance(raw, dict):
        raise ValueError("an alert is not a JSON object")
    status: dict[str, Any] = raw["status"] if isinstance(raw.get("status"), dict) else {}
    starts_at = parse_time(raw.get("startsAt"))
    fingerprint = raw.get("fingerprint")
    if starts_at is None or not isinstance(fingerprint, str):
        raise ValueError("an alert lacks `startsAt` or `fingerprint`")
    return AlertRecord(
        fingerprint=fingerprint,
        labels=_strings(raw.get("labels")),
        annotations=_strings(raw.get("annotations")),
        starts_at=starts_at,
        ends_at=parse_time(raw.get("endsAt")),
        updated_at=parse_time(raw.get("updatedAt")),
        state=str(status.get("state", "unprocessed")),
        generator_url=str(raw.get("generatorURL") or ""),
        silenced_by=tuple(str(s) for s in status.get("silencedBy") or ()),
        inhibited_by=tuple(str(s) for s in status.get("inhibitedBy") or ()),
        receivers=tuple(
            str(r.get("name", "")) for r in raw.get("receivers") or () if isinstance(r, dict)
        ),
    )


def parse_silence(raw: Any) -> SilenceRecord:
    if not isinstance(raw, dict):
        raise ValueError("a silence is not a JSON object")
    starts_at, ends_at = parse_time(raw.get("startsAt")), parse_time(raw.get("endsAt"))
    if starts_at is None or ends_at is None or "id" not in raw:
        raise ValueError("a silence lacks `id`, `startsAt` or `endsAt`")
    status: dict[str, Any] = raw["status"] if isinstance(raw.get("status"), dict) else {}
    return SilenceRecord(
        id=str(raw["id"]),
        matchers=tuple(m for m in raw.get("matchers") or () if isinstance(m, dict)),
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=str(raw.get("createdBy", "")),
        comment=str(raw.get("comment", "")),
        state=str(status.get("state", "")),
    )


class AlertmanagerAdapter(AlertsAdapter):
    """Alerts and silences from Alertmanager's API v2."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        auth = None
        if settings.basic_auth is not None:
            auth = httpx.BasicAuth(
                settings.basic_auth.username, settings.basic_auth.password.get_secret_value()
            )
        self._client = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            timeout=settings.timeout,
            headers=settings.http_headers(),
            auth=auth,
            verify=settings.verify(),
            cert=settings.client_cert(),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One API call with retries and backoff; every failure becomes an AdapterError."""
        url = f"{self._client.base_url}{path}"
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._client.request(method, path, params=params, json=json)
            except httpx.TimeoutException:
                if last:
                    raise self.error(
                        f"timed out after {self.settings.timeout:g}s ({attempts} attempts)",
                        url=url,
                        hint="Alertmanager is slow or unreachable; raise `timeout`",
                    ) from None
            except httpx.TransportError as exc:
                if last:
                    raise self.error(
                        f"cannot connect ({exc.__class__.__name__})",
                        url=url,
                        hint="is Alertmanager running and reachable?",
                    ) from None
            else:
                if response.status_code in RETRY_STATUSES and not last:
                    pass
                elif response.status_code >= 400:
                    raise self.error(
                        f"HTTP {response.status_code}: {response.text[:200]!r}", url=url
                    )
                else:
                    try:
                        return response.json()
                    except ValueError:
                        raise self.error(
                            f"malformed response (not JSON): {response.text[:200]!r}", url=url
                        ) from None
            await asyncio.sleep(self.settings.backoff * (2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def alerts(self) -> tuple[AlertRecord, ...]:
        body = await self.request_json("GET", "/api/v2/alerts")
        return self._parse_list(body, parse_alert, "/api/v2/alerts")

    async def groups(self) -> tuple[tuple[Mapping[str, str], tuple[AlertRecord, ...]], ...]:
        body = await self.request_json("GET", "/api/v2/alerts/groups")
        if not isinstance(body, list):
            raise self.error(
                "malformed response: expected a list of groups",
                url=f"{self.settings.url}/api/v2/alerts/groups",
            )
        groups = []
        for group in body:
            if not isinstance(group, dict):
                continue
            alerts = self._parse_list(group.get("alerts"), parse_alert, "/api/v2/alerts/groups")
            groups.append((_strings(group.get("labels")), alerts))
        return tuple(groups)

    async def silences(self) -> tuple[SilenceRecord, ...]:
        body = await self.request_json("GET", "/api/v2/silences")
        return self._parse_list(body, parse_silence, "/api/v2/silences")

    def _parse_list(self, body: Any, parse: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(body, list):
            raise self.error(
                "malformed response: expected a JSON list",
                url=f"{self.settings.url.rstrip('/')}{path}",
            )
        try:
            return tuple(parse(item) for item in body)
        except (ValueError, TypeError) as exc:
            raise self.error(
                f"malformed response: {exc}", url=f"{self.settings.url.rstrip('/')}{path}"
            ) from None
