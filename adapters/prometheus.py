"""Prometheus: instant and range PromQL queries over its HTTP API, with httpx.

Every request is made with a blocking ``httpx.Client`` (:class:`BlockingHttpClient`:
the same settings, shared TLS context, retries and error wording as the other
adapters' clients) in a worker thread of the adapter's own pool, and its answer is
parsed there too: an answer of megabytes (10,000 models) is never read or parsed on
the event loop. The whole response envelope is read, ``warnings`` included, which
is how Prometheus says the data is partial, so the console can show partial data
as partial.

Answers are parsed once, with orjson, from the response's bytes (the text is decoded
only to quote it in an error). The refresh's bulk read, :meth:`query_by_label`, reads
the values it needs out of the parsed answer in the worker thread, with no object per
series.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import orjson

from adapters.base import MetricsAdapter
from adapters.blocking_http import BlockingHttpClient
from adapters.records import LabelValues, QueryResult, RangeResult, RangeSeries, Sample
from adapters.redaction import EXCERPT, one_line
from adapters.settings import SourceSettings
from adapters.threads import DaemonPool

T = TypeVar("T")

QUERY_THREADS = 16
"""Queries in flight at once; the client's connection pool matches it."""


def _float(raw: Any) -> float:
    """Prometheus sends sample values as strings, NaN and ±Inf included."""
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


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


def _samples(data: dict[str, Any]) -> tuple[Sample, ...] | None:
    """An instant query's samples (a scalar is one sample with no labels); None when a
    result is not a ``[time, value]`` sample."""
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list) and len(result) == 2:
        try:
            return (Sample({}, _float(result[1]), float(result[0])),)
        except (TypeError, ValueError):
            return None
    try:
        return tuple(
            Sample(
                dict(item.get("metric") or {}), _float(item["value"][1]), float(item["value"][0])
            )
            for item in result or ()
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _range_series(data: dict[str, Any]) -> tuple[RangeSeries, ...] | None:
    """A range query's series; None when one is not a list of ``[time, value]``."""
    try:
        return tuple(
            RangeSeries(
                dict(item.get("metric") or {}),
                tuple((float(ts), _float(raw)) for ts, raw in item.get("values") or ()),
            )
            for item in data.get("result") or ()
        )
    except (TypeError, ValueError, AttributeError):
        return None


class PrometheusAdapter(MetricsAdapter):
    """Metrics from Prometheus' HTTP API (``/api/v1/query`` and ``/api/v1/query_range``)."""

    def __init__(self, name: str, settings: SourceSettings, *, method: str = "GET") -> None:
        super().__init__(name, settings)
        if method not in ("GET", "POST"):
            raise ValueError(f"method must be GET or POST, not {method!r}")
        self._method = method
        self._http = BlockingHttpClient(
            name,
            settings,
            system="Prometheus",
            connections=QUERY_THREADS,
            slow_hint="Prometheus is slow or overloaded; raise `timeout` or simplify the query",
        )
        # Its own pool, sized for one refresh's SLI queries at once: the loop's
        # default executor has only cores + 4 threads, shared with everything else.
        # Daemon threads: a query in flight when the console quits does not hold
        # the process until it is answered or times out.
        self._pool = DaemonPool(QUERY_THREADS, name)

    async def aclose(self) -> None:
        # A first breach read waits on this pool from a thread of its own: released
        # here, it ends now rather than when an unanswered query times out.
        self._pool.shutdown(wait=False, cancel_futures=True, abandon_running=True)
        self._http.close()

    async def _read(
        self, path: str, params: Mapping[str, str], read: Callable[[dict[str, Any]], T | None]
    ) -> tuple[T | None, tuple[str, ...]]:
        """One request, its answer parsed and its values read by ``read`` (None: they
        are malformed), all in a worker thread: the poller's loop is the UI's, and at
        start a sparkline seed is every SLI's history for every model (at a thousand
        models, 200,000 points)."""
        loop = asyncio.get_running_loop()

        def call() -> tuple[T | None, tuple[str, ...]]:
            data, warnings = self._call(path, params)
            return read(data), warnings

        return await loop.run_in_executor(self._pool, call)

    async def query_by_label(self, promql: str, label: str) -> LabelValues:
        """:meth:`query`, read by ``label``: no :class:`Sample`."""

        def by_label(data: dict[str, Any]) -> tuple[dict[str, float], float, int] | None:
            if data.get("resultType") == "scalar":  # no labels: nothing to read by one
                return {}, 0.0, 1
            return _label_values(data.get("result") or (), label)

        read_values, warnings = await self._read("/api/v1/query", {"query": promql}, by_label)
        if read_values is None:
            raise self._malformed_sample()
        values, timestamp, unlabelled = read_values
        return LabelValues(promql, label, values, timestamp, warnings, unlabelled)

    def _malformed_sample(self) -> Exception:
        return self.error(
            "malformed response: a result is not a [time, value] sample",
            url=self._http.url_for("/api/v1/query"),
        )

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        samples, warnings = await self._read("/api/v1/query", params, _samples)
        if samples is None:
            raise self._malformed_sample()
        return QueryResult(promql, samples, warnings)

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeResult:
        params = {
            "query": promql,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:g}",
        }
        series, warnings = await self._read("/api/v1/query_range", params, _range_series)
        if series is None:
            raise self.error(
                "malformed response: a series is not a list of [time, value] points",
                url=self._http.url_for("/api/v1/query_range"),
            )
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
            response = await loop.run_in_executor(self._pool, self._request, path, params)
            status, content = response.status_code, response.content
            body = _json(content)
            if status == 404:
                continue
            if isinstance(body, dict) and body.get("status") == "success":
                return None
            if status == 400 and isinstance(body, dict) and body.get("errorType") == "bad_data":
                # The server's text: it may echo the credentials it was sent.
                return self.redact(str(body.get("error") or ""))
            if status >= 300:
                raise self._http.status_error(response, path)
            raise self.error(
                f"HTTP {status}: {self.excerpt(_text(content))!r}", url=self._http.url_for(path)
            )
        raise self.error("has no query parser to offer (HTTP 404)", url=self._http.url_for(""))

    def _request(self, path: str, params: Mapping[str, str]) -> httpx.Response:
        """One request and its retries, in a worker thread: the last answer, whatever its
        status. No answer at all is an :class:`~adapters.http.HttpError`."""
        if self._method == "POST":  # form-encoded: no URL length limit for long PromQL
            return self._http.send("POST", path, data=params)
        return self._http.send("GET", path, params=params)

    def _call(self, path: str, params: Mapping[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """One request, in a worker thread. Every failure becomes an AdapterError."""
        url = self._http.url_for(path)
        response = self._request(path, params)
        self.give_way()
        status, content = response.status_code, response.content
        body = _json(content)
        if status != 200 and not (isinstance(body, dict) and body.get("status") == "error"):
            # Not Prometheus' own error answer: a proxy's page, a redirect, a refusal.
            raise self._http.status_error(response, path)
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
