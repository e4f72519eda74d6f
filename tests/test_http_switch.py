"""http-switch adapter: its options, templating, field paths, retries, a real HTTP server,
and the config check that validates adapter options (console.config.source_check)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import ValidationError

from adapters.base import AdapterError
from adapters.http import HttpError
from adapters.http_switch import MISSING, HttpSwitchAdapter, HttpSwitchSettings, lookup, substitute
from console.config.loader import load_text
from console.config.models import Config
from console.config.source_check import source_option_problems
from console.sources.build import build_adapters

URL = "http://switch.test:8080"
SECRET = "switch-admin-key-123"
OPTIONS: dict[str, Any] = {
    "read": {"method": "GET", "path": "/admin/fallback?model={target}", "field": "enabled"},
    "enable": {
        "method": "POST",
        "path": "/admin/fallback",
        "body": {"model": "{target}", "enabled": True},
    },
    "disable": {
        "method": "POST",
        "path": "/admin/fallback",
        "body": {"model": "{target}", "enabled": False},
    },
}


def settings(**options: Any) -> HttpSwitchSettings:
    return HttpSwitchSettings.model_validate(
        {"url": URL, "timeout": 1, "retries": 2, "backoff": 0, **OPTIONS, **options}
    )


def switch(**options: Any) -> HttpSwitchAdapter:
    return HttpSwitchAdapter("fallback", settings(**options))


# -- settings ------------------------------------------------------------------------


def test_methods_default_by_role_and_are_case_insensitive() -> None:
    s = settings(
        read={"path": "/s/{target}"},
        enable={"path": "/on", "method": "put"},
        disable={"path": "/off"},
    )
    assert (s.read.method, s.enable.method, s.disable.method) == ("GET", "PUT", "POST")
    assert s.read.field == "" and s.read.on_value is True


@pytest.mark.parametrize(
    ("options", "loc", "message"),
    [
        ({"read": None}, ("read",), "valid dictionary"),
        ({"enable": {"path": "/on", "method": "FETCH"}}, ("enable", "method"), "Input should be"),
        ({"read": {"path": "/s", "feild": "x"}}, ("read", "feild"), "Extra inputs"),
        ({"disable": {"path": "off"}}, ("disable", "path"), "must start with '/'"),
        ({"read": {"path": "/s?m={model}"}}, ("read", "path"), "only {target} is substituted"),
        ({"read": {"path": "/s", "field": "a..b"}}, ("read", "field"), "should match pattern"),
        ({"enable": {"path": "/on", "body": {"at": object()}}}, ("enable", "body"), "JSON"),
    ],
    ids=[
        "no-read",
        "bad-method",
        "unknown-key",
        "relative-path",
        "unknown-slot",
        "empty-segment",
        "not-json",
    ],
)
def test_invalid_options_are_pydantic_errors(
    options: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        settings(**options)
    locs = {tuple(e["loc"][: len(loc)]): e["msg"] for e in info.value.errors()}
    assert loc in locs and message.lower() in locs[loc].lower(), locs


def test_missing_read_is_a_missing_field() -> None:
    data = {"url": URL, "enable": OPTIONS["enable"], "disable": OPTIONS["disable"]}
    with pytest.raises(ValidationError) as info:
        HttpSwitchSettings.model_validate(data)
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [(("read",), "missing")]


# -- templating and field paths --------------------------------------------------------


def test_substitute_templates_every_string_and_keeps_other_values() -> None:
    body = {"model": "{target}", "nested": [{"id": "m-{target}-x"}, 3, None], "on": True, "n": 1.5}
    assert substitute(body, "churn") == {
        "model": "churn",
        "nested": [{"id": "m-churn-x"}, 3, None],
        "on": True,
        "n": 1.5,
    }


def test_lookup_walks_objects_and_lists() -> None:
    answer = {"data": {"models": [{"on": False}, {"on": True}]}}
    assert lookup(answer, "data.models.1.on") is True
    assert lookup(answer, "") is answer
    assert lookup(answer, "data.nope") is MISSING
    assert lookup(answer, "data.models.7.on") is MISSING
    assert lookup(answer, "data.models.x") is MISSING


@respx.mock
async def test_state_reads_the_field_with_the_target_url_encoded() -> None:
    route = respx.get(f"{URL}/admin/fallback").respond(json={"enabled": True, "model": "x"})
    assert await switch().state("fraud detector/v2&x=1") is True
    request = route.calls.last.request
    assert request.url.raw_path == b"/admin/fallback?model=fraud%20detector%2Fv2%26x%3D1"
    assert request.method == "GET" and request.content == b""


@respx.mock
async def test_state_with_a_custom_on_value_and_a_nested_field() -> None:
    route = respx.get(f"{URL}/pipelines/churn").mock(
        side_effect=[
            httpx.Response(200, json={"data": [{"status": "paused"}]}),
            httpx.Response(200, json={"data": [{"status": "running"}]}),
        ]
    )
    paused = switch(
        read={"path": "/pipelines/{target}", "field": "data.0.status", "on_value": "paused"}
    )
    assert await paused.state("churn") is True
    assert await paused.state("churn") is False
    assert route.call_count == 2


@respx.mock
async def test_whole_answer_as_the_state() -> None:
    respx.get(f"{URL}/on/churn").respond(json=False)
    assert await switch(read={"path": "/on/{target}"}).state("churn") is False


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"status": "on"}, r"no `enabled` \(keys at its parent: status\)"),
        ({"enabled": "true"}, "`enabled` is 'true', not a boolean"),
        ({"enabled": None}, "`enabled` is None, not a boolean"),
        ({"enabled": 1}, "`enabled` is 1, not a boolean"),
    ],
    ids=["missing", "string", "null", "number"],
)
@respx.mock
async def test_an_unclear_state_is_an_error_never_off(answer: Any, message: str) -> None:
    respx.get(f"{URL}/admin/fallback").respond(json=answer)
    with pytest.raises(AdapterError, match=message):
        await switch().state("churn")


@respx.mock
async def test_set_state_sends_the_templated_body_and_headers() -> None:
    route = respx.post(f"{URL}/admin/fallback").respond(204)
    sw = switch(
        enable={
            "path": "/admin/fallback",
            "body": {"model": "{target}", "enabled": True, "why": ["{target} down", 1]},
            "headers": {"X-Admin-Key": SECRET},
        }
    )
    await sw.set_state("churn", True)
    await sw.set_state("churn", False)
    on, off = (json.loads(c.request.content) for c in route.calls)
    assert on == {"model": "churn", "enabled": True, "why": ["churn down", 1]}
    assert off == {"model": "churn", "enabled": False}
    assert route.calls[0].request.headers["X-Admin-Key"] == SECRET
    assert "X-Admin-Key" not in route.calls[1].request.headers


@respx.mock
async def test_set_state_answers_are_not_parsed() -> None:
    respx.post(f"{URL}/admin/fallback").respond(200, text="OK, switched")
    await switch().set_state("churn", True)


@respx.mock
async def test_a_post_switch_is_not_resent_after_a_read_timeout() -> None:
    route = respx.post(f"{URL}/admin/fallback").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200)]
    )
    with pytest.raises(HttpError, match="may have been applied") as info:
        await switch().set_state("churn", True)
    assert route.call_count == 1 and info.value.in_doubt


@respx.mock
async def test_a_put_switch_is_retried() -> None:
    route = respx.put(f"{URL}/flags/churn").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(500), httpx.Response(200)]
    )
    await switch(enable={"method": "PUT", "path": "/flags/{target}", "body": True}).set_state(
        "churn", True
    )
    assert route.call_count == 3


@respx.mock
async def test_request_header_secrets_never_appear_in_errors() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, text=f"key {request.headers['X-Admin-Key']} is not allowed")

    respx.post(f"{URL}/admin/fallback").mock(side_effect=echo)
    sw = switch(disable={"path": "/admin/fallback", "headers": {"X-Admin-Key": SECRET}})
    with pytest.raises(AdapterError, match="HTTP 403") as info:
        await sw.set_state("churn", False)
    assert SECRET not in str(info.value) and "***" in str(info.value)


async def test_an_empty_target_is_refused() -> None:
    with pytest.raises(AdapterError, match="needs a target"):
        await switch().state("")


# -- against a real HTTP server, built from a config file -------------------------------


@pytest.fixture
def fallback_server() -> Iterator[tuple[str, dict[str, bool]]]:
    """A tiny fallback admin API: GET ?model=M reads, POST {model, enabled} sets."""
    states: dict[str, bool] = {}

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            model = parse_qs(url.query).get("model", [""])[0]
            if url.path != "/admin/fallback" or not model:
                self._reply(404, {"error": "no such model"})
                return
            self._reply(200, {"model": model, "enabled": states.get(model, False)})

        def do_POST(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {SECRET}":
                self._reply(401, {"error": "unauthorized"})
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            states[body["model"]] = bool(body["enabled"])
            self._reply(200, {"ok": True})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", states
    finally:
        server.shutdown()
        server.server_close()


CONFIG = """
sources:
  fallback:
    type: http-switch
    url: {url}
    bearer_token: {token}
    retries: 0
    options:
      read: {{method: GET, path: "/admin/fallback?model={{target}}", field: enabled}}
      enable: {{method: POST, path: /admin/fallback, body: {{model: "{{target}}", enabled: true}}}}
      disable: {{method: POST, path: /admin/fallback, body: {{model: "{{target}}", enabled: false}}}}
"""


@pytest.mark.integration
async def test_switch_from_a_config_against_a_real_server(
    fallback_server: tuple[str, dict[str, bool]],
) -> None:
    url, states = fallback_server
    config = load_text(CONFIG.format(url=url, token=SECRET), "c.yaml", Config)
    assert source_option_problems(config) == []
    adapters, failures = build_adapters(config)
    assert failures == {}
    sw = adapters["fallback"]
    assert isinstance(sw, HttpSwitchAdapter)
    try:
        assert await sw.state("fraud-detector") is False
        await sw.set_state("fraud-detector", True)
        assert states == {"fraud-detector": True}
        assert await sw.state("fraud-detector") is True
        assert await sw.state("churn") is False
        await sw.set_state("fraud-detector", False)
        assert await sw.state("fraud-detector") is False
    finally:
        await sw.aclose()


# -- console.config.source_check: adapter options located in the config -----------------------


def problems(yaml_text: str) -> list[tuple[tuple[str | int, ...], str, str]]:
    return source_option_problems(load_text(yaml_text, "c.yaml", Config))


def test_source_check_locates_switch_option_errors() -> None:
    found = problems("""
sources:
  fallback:
    type: http-switch
    url: http://127.0.0.1:8080
    options:
      read: {path: "/s?m={target}", feild: enabled}
      enable: {path: /on, method: FETCH}
""")
    by_loc = {loc: (message, hint) for loc, message, hint in found}
    assert by_loc[("sources", "fallback", "options", "read", "feild")] == (
        "unknown key",
        "did you mean `field`?",
    )
    message, _ = by_loc[("sources", "fallback", "options", "enable", "method")]
    assert "'GET', 'POST', 'PUT', 'PATCH' or 'DELETE'" in message
    assert by_loc[("sources", "fallback", "options", "disable")] == (
        "Field required",
        "add `disable:` under `options:`",
    )
    assert len(found) == 3


def test_source_check_flags_options_an_adapter_does_not_take() -> None:
    found = problems("""
sources:
  am: {type: alertmanager, url: "http://127.0.0.1:9093", options: {read: {path: /x}}}
  registry: {type: mlflow, url: "http://127.0.0.1:5000", options: {page_sise: 10}}
  spare: {type: http-switch, url: "http://127.0.0.1:1", enabled: false}
""")
    assert found == [
        (
            ("sources", "am", "options", "read"),
            "unknown key",
            "the alertmanager adapter takes no `options:`",
        ),
        (
            ("sources", "registry", "options", "page_sise"),
            "unknown key",
            "did you mean `page_size`?",
        ),
    ]


def test_source_check_reports_an_option_overriding_a_base_field_where_it_is() -> None:
    found = problems("""
sources:
  registry: {type: mlflow, url: "http://127.0.0.1:5000", options: {timeout: -1, page_size: 0}}
""")
    locs = [loc for loc, _, _ in found]
    assert locs == [
        ("sources", "registry", "options", "timeout"),
        ("sources", "registry", "options", "page_size"),
    ]


def test_source_check_names_installed_types_for_an_unknown_one() -> None:
    ((loc, message, hint),) = problems("""
sources:
  x: {type: nosuch, url: "http://127.0.0.1:1"}
""")
    assert loc == ("sources", "x", "type") and "unknown adapter type 'nosuch'" in message
    assert "http-switch" in hint and "mlflow" in hint and "alertmanager" in hint
