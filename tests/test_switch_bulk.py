"""Switches read in bulk: ``SwitchAdapter.states`` and http-switch's ``read_all``, one
request per sweep, on the real lab too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import yaml
from pydantic import ValidationError

from adapters.base import AdapterError, SwitchAdapter
from adapters.http_switch import HttpSwitchAdapter
from adapters.settings import SourceSettings
from console.config.loader import load_config
from console.config.located import ConfigError
from console.sources.build import build_adapters
from console.sources.poller import Poller
from tests.httpproxy import FaultProxy
from tests.test_http_switch import OPTIONS, URL, problems, settings

READ_ALL = {"method": "GET", "path": "/admin/state", "items": "serving", "field": "fallback"}
STATE = {
    "serving": {
        "fraud-detector": {"fallback": True, "paused": False},
        "churn-predictor": {"fallback": False, "paused": True},
        "recommender": {"fallback": "yes", "paused": False},
    }
}


def bulk_switch(**read_all: Any) -> HttpSwitchAdapter:
    return HttpSwitchAdapter("serving", settings(read_all={**READ_ALL, **read_all}))


@respx.mock
async def test_read_all_is_one_request_for_every_target() -> None:
    route = respx.get(f"{URL}/admin/state").respond(json=STATE)
    per_model = respx.get(f"{URL}/admin/fallback")
    read = await bulk_switch().states(["fraud-detector", "churn-predictor", "recommender", "gone"])
    assert route.call_count == 1 and per_model.call_count == 0
    assert read.on == {"fraud-detector": True, "churn-predictor": False}
    # A state of another kind is never taken for off; a target not in the answer is said.
    assert "`fallback` is 'yes', not a boolean" in read.errors["recommender"]
    assert "'gone' is not in the answer's `serving`" in read.errors["gone"]


@respx.mock
async def test_read_all_reads_a_list_of_entries_by_their_key() -> None:
    models = [{"name": "a", "state": {"on": "yes"}}, {"name": "b", "state": {"on": "no"}}]
    respx.get(f"{URL}/v1/models").respond(json={"data": {"models": models}})
    switch = bulk_switch(
        path="/v1/models", items="data.models", key="name", field="state.on", on_value="yes"
    )
    read = await switch.states(["a", "b"])
    assert read.on == {"a": True, "b": False} and read.errors == {}


@pytest.mark.parametrize(
    ("read_all", "answer", "message"),
    [
        ({}, {"models": []}, r"the answer has no `serving` \(keys at its parent: models\)"),
        ({"key": "name"}, STATE, "`serving` is object, not a list of entries"),
        ({"items": "items"}, {"items": [1]}, "`items` is list, not an object keyed by target"),
        ({"field": "on"}, STATE, "no target's state could be read"),
    ],
    ids=["no-items", "object-with-key", "list-without-key", "no-field-anywhere"],
)
@respx.mock
async def test_a_read_all_answer_that_does_not_fit_is_a_clear_error(
    read_all: dict[str, Any], answer: Any, message: str
) -> None:
    respx.get(f"{URL}/admin/state").respond(json=answer)
    with pytest.raises(AdapterError, match=message):
        await bulk_switch(**read_all).states(["fraud-detector"])


@respx.mock
async def test_without_read_all_each_target_is_read_on_its_own() -> None:
    route = respx.get(f"{URL}/admin/fallback").mock(
        side_effect=lambda request: httpx.Response(
            200 if request.url.params["model"] != "gone" else 404,
            json={"enabled": request.url.params["model"] == "a"},
        )
    )
    read = await HttpSwitchAdapter("serving", settings()).states(["a", "b", "gone"])
    assert route.call_count == 3
    assert read.on == {"a": True, "b": False} and "HTTP 404" in read.errors["gone"]


async def test_the_default_bulk_read_raises_when_no_target_could_be_read() -> None:
    class Down(SwitchAdapter):
        async def state(self, target: str) -> bool:
            raise AdapterError("serving", "cannot connect")

        async def set_state(self, target: str, on: bool) -> None:
            raise AssertionError("only read")

    with pytest.raises(AdapterError, match="cannot connect"):
        await Down("serving", SourceSettings(url="http://127.0.0.1:1")).states(["a", "b"])


# -- config validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("read_all", "loc", "message"),
    [
        ({"path": "/state/{target}"}, ("read_all", "path"), "one request for every target"),
        ({"path": "/s", "body": {"m": ["{target}"]}}, ("read_all", "body"), "one request"),
        ({"path": "/s", "items": "a..b"}, ("read_all", "items"), "should match pattern"),
        ({"path": "/s", "key": ".name"}, ("read_all", "key"), "should match pattern"),
        ({"items": "serving"}, ("read_all", "path"), "Field required"),
    ],
    ids=["target-in-path", "target-in-body", "bad-items", "bad-key", "no-path"],
)
def test_invalid_read_all_options_are_refused(
    read_all: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        settings(read_all=read_all)
    found = {tuple(e["loc"][: len(loc)]): e["msg"] for e in info.value.errors()}
    assert loc in found and message.lower() in found[loc].lower(), found


def test_read_all_errors_are_located_with_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n"
        "  serving:\n"
        "    type: http-switch\n"
        "    url: http://127.0.0.1:8080\n"
        "    options:\n"
        '      read: {path: "/admin/fallback?model={target}", field: enabled}\n'
        "      read_all:\n"
        '        path: "/admin/state?model={target}"\n'
        "        itmes: serving\n"
        "      enable: {path: /admin/fallback}\n"
        "      disable: {path: /admin/fallback}\n"
        "slis: []\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    lines = str(info.value).splitlines()
    assert any(
        line.startswith(f"{config}:8:")
        and "sources.serving.options.read_all.path:" in line
        and "one request for every target" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{config}:9:")
        and "sources.serving.options.read_all.itmes: unknown key" in line
        and "did you mean `items`?" in line
        for line in lines
    ), lines


def test_read_all_unknown_key_names_the_allowed_ones() -> None:
    found = problems(
        f"""
sources:
  serving:
    type: http-switch
    url: {URL}
    options:
      read: {OPTIONS["read"]}
      read_all: {{path: /admin/state, colour: blue}}
      enable: {{path: /on}}
      disable: {{path: /off}}
"""
    )
    ((loc, message, hint),) = found
    assert loc == ("sources", "serving", "options", "read_all", "colour")
    assert message == "unknown key" and "items" in hint and "on_value" in hint


# -- on the real lab -------------------------------------------------------------------


@pytest.mark.integration
async def test_a_lab_sweep_reads_every_switch_in_one_request(lab: Any, tmp_path: Path) -> None:
    data = yaml.safe_load(Path(lab.config_path).read_text())
    service = data["sources"]["serving"]["url"]
    assert data["sources"]["serving"]["options"]["read_all"]["path"] == "/admin/state"
    assert data["sources"]["pipelines"]["options"]["read_all"]["path"] == "/admin/state"
    model = "recommender"
    with FaultProxy(service) as proxy:
        for source in ("serving", "pipelines"):
            data["sources"][source]["url"] = proxy.url
        data["store"] = {"path": str(tmp_path / "store.db")}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(data))
        config = load_config(path)
        adapters, failures = build_adapters(config)
        assert failures == {}
        poller = Poller(config, adapters)
        try:
            await poller.refresh("prometheus")  # the models to sweep
            models = poller.snapshot.models
            assert model in models and len(models) >= 6
            await adapters["serving"].set_state(model, True)  # type: ignore[attr-defined]
            proxy.seen.clear()
            await poller.refresh("serving")
            await poller.refresh("pipelines")
            # One request per sweep, whatever the number of models.
            assert proxy.seen == [
                ("GET", "/admin/state", "forward"),
                ("GET", "/admin/state", "forward"),
            ]
            snap = poller.snapshot
            assert snap.switches["fallback"] == {m: m == model for m in models}
            assert snap.switches["pipeline"] == {m: False for m in models}
            assert snap.sources["serving"].warnings == ()
        finally:
            await adapters["serving"].set_state(model, False)  # type: ignore[attr-defined]
            await poller.stop()
