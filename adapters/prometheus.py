"""Prometheus: instant and range PromQL queries through prometheus-api-client.

The client is synchronous (requests), so every call runs in a worker thread
in the adapter's own thread pool and never blocks the event loop. Its
``custom_query`` drops the ``warnings`` of the response envelope, which is
how Prometheus says the data is partial; :class:`_EnvelopeClient` keeps the
library's session, retries, auth and TLS handling and returns the envelope
whole so the console can show partial data as partial.

Answers are parsed once, with orjson, from the response's bytes (the text is decoded
only to quote it in an error). The refresh's bulk read, :meth:`query_by_label`, reads
the values it needs out of the parsed answer in the worker thread, with no object per
series.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import orjson
import requests
from prometheus_api_client import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from adapters.base import (
    LabelValues,
    MetricsAdapter,
    QueryResult,
    RangeResult,
    RangeSeries,
    Sample,
    SourceSettings,
)
from adapters.redaction import EXCERPT, one_line
from adapters.threads import DaemonPool

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
QUERY_THREADS = 16
"""Queries in flight at once; the session's connection pool matches it."""


def _float(raw: Any) -> float:
    """Prometheus sends sample values as strings, NaN and ±Inf included."""
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


class _ReadTimeoutAfterRetries(Exception):
    """A read timeout that urllib3 reported as a connection error."""


class _EnvelopeClient(PrometheusConnect):  # type: ignore[misc]
    """PrometheusConnect that returns the whole response envelope."""

    def envelope(self, path: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """Status and the answer's bytes."""
        response = self._session.request(
            method=self._method,
            url=f"{self.url}{path}",
            params=params if self._method == "GET" else None,
            data=params if self._method == "POST" else None,
            verify=self._session.verify,
            headers=self.headers,
            auth=self.auth,
            cert=self._session.cert,
            timeout=self._timeout,
        )
        return response.status_code, response.content


def _json(content: bytes) -> Any:
    """The parsed answer, or None when it is not JSON."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _text(content: bytes) -> str:
    """An answer's bytes as text, to quote in an error."""
    return content.decode("utf-8", errors="replace")


def _label_values(result: Any, label: str) -> tuple[dict[str, float], float, int] | None:
    """An instant vector's values by ``label``: ``(values, newest timestamp, series
    without the label)``; None when a result is not a ``[time, value]`` sample. The
    refresh's hot path: one dict entry per series, nothing else kept."""
    values: dict[str, float] = {}
    timestamp = 0.0
    unlabelled = 0
    try:
        for item in result:
            metric = item.get("metric")
            key = metric.get(label) if metric else None
            if key is None:
                unlabelled += 1
                continue
            at, raw = item["value"]
            try:
                values[key] = float(raw)
            except (TypeError, ValueError):  # NaN and ±Inf arrive as strings float() reads
                values[key] = math.nan
            if at > timestamp:
                timestamp = float(at)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return values, timestamp, unlabelled


class PrometheusAdapter(MetricsAdapter):
    """Metrics from Prometheus' HTTP API (``/api/v1/query`` and ``/api/v1/query_range``)."""

    def __init__(self, name: str, settings: SourceSettings, *, method: str = "GET") -> None:
        super().__init__(name, settings)
        retry = Retry(
            total=settings.retries,
            backoff_factor=settings.backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=("GET", "POST"),
            raise_on_status=False,
        )
        session = requests.Session()
        session.verify = settings.verify()
        session.cert = settings.client_cert()
        auth = None
        if settings.basic_auth is not None:
            auth = settings.basic_auth.credentials()
        self._client = _EnvelopeClient(
            url=settings.url.rstrip("/"),
            headers=settings.http_headers() or None,
            disable_ssl=not settings.tls.verify,
            retry=retry,
            auth=auth,
            session=session,
            timeout=settings.timeout,
            method=method,
        )

        # The library mounts a default adapter (10 pooled connections); match the threads.
        session.mount(self._client.url, HTTPAdapter(max_retries=retry, pool_maxsize=QUERY_THREADS))
        # Its own pool, sized for one refresh's SLI queries at once: the loop's
        # default executor has only cores + 4 threads, shared with everything else.
        # Daemon threads: a query in flight when the console quits does not hold
        # the process until it is answered or times out.
        self._pool = DaemonPool(QUERY_THREADS, name)

    async def aclose(self) -> None:
        # A first breach read waits on this pool from a thread of its own: released
        # here, it ends now rather than when an unanswered query times out.
        self._pool.shutdown(wait=False, cancel_futures=True, abandon_running=True)
        self._client.close()

    async def _in_thread(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, path, params)

    async def query_by_label(self, promql: str, label: str) -> LabelValues:
        """:meth:`query`, read by ``label`` in the worker thread: no :class:`Sample`."""
        loop = asyncio.get_running_loop()

        def read() -> tuple[tuple[dict[str, float], float, int] | None, tuple[str, ...]]:
            data, warnings = self._call("/api/v1/query", {"query": promql})
            if data.get("resultType") == "scalar":  # no labels: nothing to read by one
                return ({}, 0.0, 1), warnings
            return _label_values(data.get("result") or (), label), warnings

        read_values, warnings = await loop.run_in_executor(self._pool, read)
        if read_values is None:
            raise self._malformed_sample()
        values, timestamp, unlabelled = read_values
        return LabelValues(promql, label, values, timestamp, warnings, unlabelled)

    def _malformed_sample(self) -> Exception:
        return self.error(
            "malformed response: a result is not a [time, value] sample",
            url=f"{self._client.url}/api/v1/query",
        )

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data, warnings = await self._in_thread("/api/v1/query", params)
        result = data.get("result")
        if data.get("resultType") == "scalar" and isinstance(result, list) and len(result) == 2:
            samples: tuple[Sample, ...] = (Sample({}, _float(result[1]), float(result[0])),)
        else:
            try:
                samples = tuple(
                    Sample(
                        dict(item.get("metric") or {}),
                        _float(item["value"][1]),
                        float(item["value"][0]),
                    )
                    for item in result or ()
                )
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                raise self._malformed_sample() from None
        return QueryResult(promql, tuple(samples), warnings)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        data, warnings = await self._in_thread("/api/v1/query_range", params)
        try:
            series = tuple(
                RangeSeries(
                    dict(item.get("metric") or {}),
                    tuple((float(ts), _float(raw)) for ts, raw in item.get("values") or ()),
                )
                for item in data.get("result") or ()
            )
        except (TypeError, ValueError, AttributeError):
            raise self.error(
                "malformed response: a series is not a list of [time, value] points",
                url=f"{self._client.url}/api/v1/query_range",
            ) from None
        return RangeResult(promql, series, warnings)

    def excerpt(self, text: str, limit: int = EXCERPT) -> str:
        """A piece of an answer or a library's message to quote: secrets masked
        before it is cut, so no cut leaves part of one."""
        return one_line(self.redact(text), limit)

    async def parse_error(self, promql: str) -> str | None:
        """Prometheus' own parser: ``/api/v1/format_query`` parses without evaluating;
        where it is missing (before 2.41, or another server), an instant query at
        time 0 is parsed the same way and finds no data to cost anything."""
        loop = asyncio.get_running_loop()
        for path, params in (
            ("/api/v1/format_query", {"query": promql}),
            ("/api/v1/query", {"query": promql, "time": "0"}),
        ):
            status, content = await loop.run_in_executor(self._pool, self._request, path, params)
            body = _json(content)
            if status == 404:
                continue
            if isinstance(body, dict) and body.get("status") == "success":
                return None
            if status == 400 and isinstance(body, dict) and body.get("errorType") == "bad_data":
                # The server's text: it may echo the credentials it was sent.
                return self.redact(str(body.get("error") or ""))
            raise self.error(
                f"HTTP {status}: {self.excerpt(_text(content))!r}", url=f"{self._client.url}{path}"
            )
        raise self.error("has no query parser to offer (HTTP 404)", url=self._client.url)

    def _request(self, path: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """One request, in a worker thread: status and the answer's bytes. A transport
        failure becomes an AdapterError."""
        url = f"{self._client.url}{path}"
        try:
            try:
                status, content = self._client.envelope(path, params)
            except requests.exceptions.ConnectionError as exc:
                # urllib3 wraps a read timeout in MaxRetryError once retries run out,
                # and requests then calls it a connection error. Say what it was.
                reason = getattr(exc.args[0] if exc.args else None, "reason", None)
                if isinstance(reason, ReadTimeoutError):
                    raise _ReadTimeoutAfterRetries from exc
                raise
        except (requests.exceptions.Timeout, _ReadTimeoutAfterRetries):
            raise self.error(
                f"timed out after {self.settings.timeout:g}s",
                url=url,
                hint="Prometheus is slow or overloaded; raise `timeout` or simplify the query",
            ) from None
        except requests.exceptions.RetryError as exc:
            raise self.error(
                f"gave up after {self.settings.retries + 1} attempts ({exc.__class__.__name__})",
                url=url,
            ) from None
        except requests.exceptions.SSLError as exc:
            raise self.error(
                f"TLS error: {self.excerpt(str(exc))}", url=url, hint="check `tls:` in the config"
            ) from None
        except requests.exceptions.ConnectionError:
            raise self.error(
                "cannot connect", url=url, hint="is Prometheus running and reachable?"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise self.error(f"request failed: {self.excerpt(str(exc))}", url=url) from None
        return status, content

    def _call(self, path: str, params: Mapping[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """One request, in a worker thread. Every failure becomes an AdapterError."""
        url = f"{self._client.url}{path}"
        status, content = self._request(path, params)
        body = _json(content)
        if not isinstance(body, dict):
            raise self.error(
                f"malformed response (HTTP {status}, not a JSON object): "
                f"{self.excerpt(_text(content))!r}",
                url=url,
            )
        if status != 200 or body.get("status") != "success":
            kind = body.get("errorType") or "error"
            detail = str(body.get("error") or "") or self.excerpt(_text(content))
            hint = "check the PromQL in the config" if status in (400, 422) else ""
            raise self.error(f"HTTP {status} {kind}: {detail}", url=url, hint=hint)
        data = body.get("data")
        if not isinstance(data, dict):
            raise self.error("malformed response: `data` is missing", url=url)
        warnings = tuple(self.redact(str(w)) for w in body.get("warnings") or ())
        return data, warnings
