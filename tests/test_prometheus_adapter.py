"""Prometheus adapter: envelope parsing, warnings, and faults (500, timeout, garbage)."""

from __future__ import annotations

import json
import math

import pytest

from adapters.base import AdapterError, SourceSettings
from adapters.prometheus import PrometheusAdapter
from tests.faultserver import Reply, fault_server


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
