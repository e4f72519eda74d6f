"""Alertmanager API v2: alerts, alert groups and silences.

The API returns bare JSON (no envelope). Requests go through one
:class:`adapters.http.HttpClient` with the source's timeout, headers, auth and
TLS. Reads (and expiring a silence, a DELETE) are retried with exponential
backoff on connection errors, timeouts, 429 and 5xx; creating a silence (a
POST) is retried only when it certainly never reached Alertmanager.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from adapters.base import AdapterError, AlertsAdapter
from adapters.http import HttpClient
from adapters.records import AlertRecord, SilenceRecord
from adapters.settings import SourceSettings


def parse_time(raw: Any) -> datetime | None:
    """Alertmanager's RFC 3339 times, or None for a missing or zero time."""
    if not isinstance(raw, str) or not raw or raw.startswith("0001-01-01"):
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _strings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def parse_alert(raw: Any, model_label: str = "model") -> AlertRecord:
    """One API v2 alert; raises ValueError if a required field is missing.

    ``model_label`` is the label that names the model (the config's ``model_label``)."""
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
        model_label=model_label,
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


def describe_error(response: httpx.Response, payload: Any) -> tuple[str, str] | None:
    """Alertmanager's error answers: a bare JSON string, or ``{"code", "message"}``."""
    if isinstance(payload, str) and payload:
        return payload, ""
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"], ""
    return None


def rfc3339(moment: datetime) -> str:
    """An aware datetime as RFC 3339 UTC with milliseconds (``2026-11-23T20:00:00.000Z``)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerAdapter(AlertsAdapter):
    """Alerts and silences from Alertmanager's API v2."""

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        self._http = HttpClient(name, settings, system="Alertmanager", describe=describe_error)
        #: The last read's alerts by fingerprint, with the answer each was parsed from.
        self._last_read: dict[str, tuple[Any, AlertRecord]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    def error(self, message: str, *, url: str = "", hint: str = "") -> AdapterError:
        return self._http.error(message, url=url, hint=hint)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One API call (see :class:`adapters.http.HttpClient` for retries and errors)."""
        return await self._http.request_json(method, path, params=params, json=json)

    def _parse_alert(self, raw: Any) -> AlertRecord:
        return parse_alert(raw, self.model_label)

    async def alerts(self) -> tuple[AlertRecord, ...]:
        """Every alert; one the last read saw, unchanged, is the same record again.

        Comparing an alert's answer with the last one costs a fraction of parsing it
        (three RFC 3339 times, label maps, a record), and most alerts do not change
        between two reads; a screen can also skip an unchanged alert by identity.
        The answer is read in the HTTP client's worker thread, not on the loop."""
        path = "/api/v2/alerts"
        return await self._http.request_json(  # type: ignore[no-any-return]
            "GET", path, parse=lambda body: self._read_alerts(body, path)
        )

    def _read_alerts(self, body: Any, path: str) -> tuple[AlertRecord, ...]:
        self.give_way()
        last, read = self._last_read, {}

        def parse(raw: Any) -> AlertRecord:
            fingerprint = raw.get("fingerprint") if isinstance(raw, dict) else None
            known = last.get(fingerprint) if isinstance(fingerprint, str) else None
            if known is not None and known[0] == raw and known[1].model_label == self.model_label:
                record = known[1]
            else:
                record = parse_alert(raw, self.model_label)
            read[record.fingerprint] = (raw, record)
            return record

        alerts = self._parse_list(body, parse, path)
        self._last_read = read
        return alerts

    async def groups(self) -> tuple[tuple[Mapping[str, str], tuple[AlertRecord, ...]], ...]:
        body = await self.request_json("GET", "/api/v2/alerts/groups")
        if not isinstance(body, list):
            raise self.error(
                "malformed response: expected a list of groups",
                url=self._http.url_for("/api/v2/alerts/groups"),
            )
        groups = []
        for group in body:
            if not isinstance(group, dict):
                continue
            alerts = self._parse_list(
                group.get("alerts"), self._parse_alert, "/api/v2/alerts/groups"
            )
            groups.append((_strings(group.get("labels")), alerts))
        return tuple(groups)

    async def silences(self) -> tuple[SilenceRecord, ...]:
        body = await self.request_json("GET", "/api/v2/silences")
        return self._parse_list(body, parse_silence, "/api/v2/silences")

    async def create_silence(
        self,
        matchers: tuple[Mapping[str, object], ...],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """``POST /api/v2/silences``; returns the new silence's ID.

        Not retried once it may have reached Alertmanager: a second POST would
        create a second silence. On an error with ``in_doubt`` set, list the
        silences to see whether it exists.
        """
        path = "/api/v2/silences"
        body = {
            "matchers": [dict(m) for m in matchers],
            "startsAt": rfc3339(starts_at),
            "endsAt": rfc3339(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = await self.request_json("POST", path, json=body)
        silence_id = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise self._http.error(
                f"malformed response: no `silenceID` in {self._http.excerpt(repr(answer))}",
                url=self._http.url_for(path),
                hint="the silence may have been created; list the silences",
                in_doubt=True,
            )
        return silence_id

    async def expire_silence(self, silence_id: str) -> None:
        """``DELETE /api/v2/silence/{id}``. Expiring an expired silence succeeds."""
        if not silence_id:
            raise self.error("cannot expire a silence without an ID")
        await self.request_json("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")

    def _parse_list(self, body: Any, parse: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(body, list):
            raise self.error(
                "malformed response: expected a JSON list", url=self._http.url_for(path)
            )
        try:
            return tuple(parse(item) for item in body)
        except (ValueError, TypeError) as exc:
            raise self.error(f"malformed response: {exc}", url=self._http.url_for(path)) from None
