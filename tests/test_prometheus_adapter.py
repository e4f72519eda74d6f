"""Prometheus adapter: envelope parsing, warnings, and faults (500, timeout, garbage),
retries, POST, redirects and redaction through its HTTP client."""

from __future__ import annotations

import asyncio
import http.server
import json
import math
import threading

import pytest

import adapters.http
from adapters.base import AdapterError
from adapters.prometheus import QUERY_THREADS, PrometheusAdapter
from adapters.settings import SourceSettings
from tests.faultserver import Reply, fault_server, serving


def vector(*samples: tuple[str, str], warnings: list[str] | None = None) -> bytes:
    body: dict[str, object] = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"model": m}, "value": [1700000000.5, v]} for m, v in samples],
        },
    }
    if warnings:
        body["warnings"] = warnings
    return json.dumps(body).encode()


def adapter(url: str, **overrides: object) -> PrometheusAdapter:
    settings = SourceSettings.model_validate(
        {"url": url, "timeout": 1, "retries": 0, "backoff": 0, **overrides}
    )
    return PrometheusAdapter("prometheus", settings)


async def test_instant_query_parses_nan_and_inf_strings() -> None:
    with fault_server(Reply(body=vector(("a", "0.5"), ("b", "NaN"), ("c", "+Inf")))) as srv:
        result = await adapter(srv.url).query("x")
    values = {s.labels["model"]: s.value for s in result.samples}
    assert values["a"] == 0.5 and math.isnan(values["b"]) and values["c"] == math.inf
    assert result.warnings == ()


async def test_partial_data_warnings_are_kept() -> None:
    reply = Reply(body=vector(("a", "1"), warnings=["store gateway unavailable"]))
    with fault_server(reply) as srv:
        result = await adapter(srv.url).query("x")
    assert result.warnings == ("store gateway unavailable",)


async def test_http_500_is_a_clear_error_after_retries() -> None:
    with fault_server(Reply(status=500, body=b"boom")) as srv:
        with pytest.raises(AdapterError) as info:
            await adapter(srv.url, retries=2).query("x")
    assert len(srv.requests) == 3  # one try and two retries
    assert "prometheus" in str(info.value) and srv.url in str(info.value)


async def test_500_then_success_recovers_within_retries() -> None:
    with fault_server(Reply(status=503), Reply(body=vector(("a", "2")))) as srv:
        result = await adapter(srv.url, retries=1).query("x")
    assert result.samples[0].value == 2.0


async def test_timeout_is_a_clear_error() -> None:
    with fault_server(Reply(body=vector(("a", "1")), delay=2.0)) as srv:
        with pytest.raises(AdapterError, match=r"timed out after 0\.3s"):
            await adapter(srv.url, timeout=0.3).query("x")


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"[1, 2, 3]",
        b'{"status": "success"}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"value":"x"}]}}',
    ],
    ids=["html", "list", "no-data", "bad-sample"],
)
async def test_malformed_json_is_a_clear_error(body: bytes) -> None:
    with fault_server(Reply(body=body)) as srv:
        with pytest.raises(AdapterError, match="malformed response"):
            await adapter(srv.url).query("x")


async def test_bad_promql_names_the_problem() -> None:
    body = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"})
    with fault_server(Reply(status=400, body=body.encode())) as srv:
        with pytest.raises(AdapterError, match="HTTP 400 bad_data: parse error") as info:
            await adapter(srv.url).query("sum(")
    assert "PromQL" in info.value.hint


async def test_connection_refused() -> None:
    with pytest.raises(AdapterError, match="cannot connect"):
        await adapter("http://127.0.0.1:1").query("x")


async def test_headers_and_bearer_token_are_sent() -> None:
    seen: dict[str, str] = {}
    with fault_server(Reply(body=vector(("a", "1")))) as srv:
        import http.server

        original = http.server.BaseHTTPRequestHandler.parse_request

        def spy(self: http.server.BaseHTTPRequestHandler) -> bool:
            ok = original(self)
            seen.update(self.headers.items())
            return ok

        http.server.BaseHTTPRequestHandler.parse_request = spy  # type: ignore[method-assign]
        try:
            await adapter(srv.url, headers={"X-Org": "acme"}, bearer_token="t0k").query("x")
        finally:
            http.server.BaseHTTPRequestHandler.parse_request = original  # type: ignore[method-assign]
    assert seen["X-Org"] == "acme" and seen["Authorization"] == "Bearer t0k"


async def test_range_query() -> None:
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {"model": "a"}, "values": [[1, "0.1"], [2, "0.2"]]}],
            },
        }
    ).encode()
    with fault_server(Reply(body=body)) as srv:
        result = await adapter(srv.url).query_range("x", 1, 2, 1)
    assert result.series[0].points == ((1.0, 0.1), (2.0, 0.2))
    assert "start=1.000" in srv.requests[0]


# -- the HTTP stack: retries, POST, timeouts, redirects, redaction, connections ---------


async def test_a_post_query_is_retried_after_a_503_with_its_form_body() -> None:
    """Long PromQL goes as a POST form; a query is a read, so a 503 is retried."""
    with fault_server(Reply(status=503), Reply(body=vector(("a", "2")))) as srv:
        prometheus = PrometheusAdapter(
            "prometheus",
            SourceSettings.model_validate({"url": srv.url, "retries": 1, "backoff": 0}),
            method="POST",
        )
        try:
            result = await prometheus.query_by_label('sum by (model) (x{a="b c"})', "model")
        finally:
            await prometheus.aclose()
    assert result.values == {"a": 2.0}
    assert srv.methods == ["POST", "POST"]
    assert srv.requests == ["/api/v1/query"] * 2  # nothing in the URL
    assert srv.bodies == [b"query=sum+by+%28model%29+%28x%7Ba%3D%22b+c%22%7D%29"] * 2


async def test_retries_wait_the_backoff_doubling_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(adapters.http.time, "sleep", waits.append)
    replies = (Reply(status=503), Reply(status=429), Reply(body=vector(("a", "1"))))
    with fault_server(*replies) as srv:
        result = await adapter(srv.url, retries=2, backoff=0.25).query("x")
    assert result.samples[0].value == 1.0
    assert len(srv.requests) == 3 and waits == [0.25, 0.5]


async def test_a_read_timeout_is_retried_then_named() -> None:
    with fault_server(Reply(body=vector(("a", "1")), delay=2.0)) as srv:
        with pytest.raises(AdapterError) as info:
            await adapter(srv.url, timeout=0.3, retries=1).query("x")
    assert len(srv.requests) == 2
    assert "timed out after 0.3s (2 attempts)" in info.value.message
    assert "raise `timeout` or simplify the query" in info.value.hint


async def test_an_answer_that_is_not_prometheus_says_what_it_is() -> None:
    """A proxy in front of Prometheus refuses the credentials with a page of its own."""
    with fault_server(Reply(status=401, body=b"Unauthorized", content_type="text/plain")) as srv:
        with pytest.raises(AdapterError) as info:
            await adapter(srv.url).query("x")
    assert info.value.message == "HTTP 401: 'Unauthorized'"
    assert "refused the credentials" in info.value.hint


async def test_a_redirect_is_followed() -> None:
    moved = Reply(status=302, headers={"Location": "/prom/api/v1/query?query=x"})
    with fault_server(moved, Reply(body=vector(("a", "3")))) as srv:
        result = await adapter(srv.url).query("x")
    assert result.samples[0].value == 3.0
    assert srv.requests[1] == "/prom/api/v1/query?query=x"


async def test_no_credential_reaches_a_transport_error() -> None:
    """The parse check is no contract method: its errors are redacted by the client
    alone. A refused connection and a timeout name the URL without its password."""
    secret = "pa55-w0rd-xyz"
    with fault_server(Reply(body=b"{}", delay=2.0)) as srv:
        slow = srv.url.replace("http://", f"http://ann:{secret}@")
        for url in (slow, f"http://ann:{secret}@127.0.0.1:1"):
            prometheus = adapter(url, timeout=0.3, bearer_token=secret)
            try:
                with pytest.raises(AdapterError) as info:
                    await prometheus.parse_error("up")
            finally:
                await prometheus.aclose()
            shown = " ".join((str(info.value), info.value.url, info.value.hint))
            assert secret not in shown and "@" not in info.value.url, shown
            assert "timed out" in shown or "cannot connect" in shown


async def test_a_refresh_worth_of_queries_is_in_flight_at_once() -> None:
    """QUERY_THREADS queries reach the server together: the connection pool is not
    smaller than the thread pool. Each answer waits until all have arrived."""
    together = threading.Barrier(QUERY_THREADS, timeout=20)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                together.wait()
                status, body = 200, vector(("a", "1"))
            except threading.BrokenBarrierError:
                status, body = 500, b"not all at once"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        prometheus = adapter(url, timeout=30)
        try:
            results = await asyncio.gather(
                *(prometheus.query(f"x{n}") for n in range(QUERY_THREADS))
            )
        finally:
            await prometheus.aclose()
    assert [r.samples[0].value for r in results] == [1.0] * QUERY_THREADS


async def test_an_answer_is_parsed_in_a_worker_thread_once_keys_let_it() -> None:
    """Between an answer's arrival and its parse, the worker thread gives way to the
    console's keys (``give_way``); the loop's own thread never parses."""
    with fault_server(Reply(body=vector(("a", "0.5")))) as srv:
        prometheus = adapter(srv.url)
        gave_way: list[int] = []
        prometheus.give_way = lambda: gave_way.append(threading.get_ident())
        result = await prometheus.query("x")
        await prometheus.aclose()
    assert [s.value for s in result.samples] == [0.5]
    assert len(gave_way) == 1 and gave_way[0] != threading.get_ident()


@pytest.mark.parametrize("kind", ["query", "query_range", "scalar"])
async def test_no_answer_is_read_on_the_event_loop(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop that runs the poller is the UI's: every value of an answer, a range
    query's points too (at start, each SLI's history for every model), is read in a
    worker thread, never in the loop's own."""
    import adapters.prometheus

    read_in: set[int] = set()
    original = adapters.prometheus._float

    def noting(raw: object) -> float:
        read_in.add(threading.get_ident())
        return original(raw)

    monkeypatch.setattr(adapters.prometheus, "_float", noting)
    matrix = {"resultType": "matrix", "result": [{"metric": {"m": "a"}, "values": [[1, "2"]]}]}
    scalar = {"resultType": "scalar", "result": [1, "2"]}
    data = {"query_range": matrix, "scalar": scalar}.get(kind)
    body = vector(("a", "2")) if data is None else json.dumps({"status": "success", "data": data})
    with fault_server(Reply(body=body if isinstance(body, bytes) else body.encode())) as srv:
        prometheus = adapter(srv.url)
        if kind == "query_range":
            values = [
                p[1] for s in (await prometheus.query_range("x", 1, 2, 1)).series for p in s.points
            ]
        else:
            values = [s.value for s in (await prometheus.query("x")).samples]
        await prometheus.aclose()
    assert values == [2.0]
    assert read_in and threading.get_ident() not in read_in


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("query_range", {"resultType": "matrix", "result": [{"values": [["now", "1"]]}]}),
        ("query_range", {"resultType": "matrix", "result": [{"values": 7}]}),
        ("query", {"resultType": "vector", "result": [{"value": ["now", "1"]}]}),
        ("query", {"resultType": "scalar", "result": ["now", "1"]}),
    ],
)
async def test_a_malformed_answer_read_in_a_thread_is_one_clear_error(
    kind: str, data: dict[str, object]
) -> None:
    body = json.dumps({"status": "success", "data": data}).encode()
    with fault_server(Reply(body=body)) as srv:
        prometheus = adapter(srv.url)
        with pytest.raises(AdapterError, match="malformed response"):
            if kind == "query_range":
                await prometheus.query_range("x", 1, 2, 1)
            else:
                await prometheus.query("x")
        await prometheus.aclose()
