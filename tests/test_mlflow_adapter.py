"""MLflow registry adapter: recorded REST answers (respx), then a real MLflow server.

The real server runs from ``.venv-mlflow`` (scripts/setup.sh installs it) in its lean
form, on its own port and temp dir, once for this module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from adapters.base import AdapterError
from adapters.http import HttpError
from adapters.mlflow import MlflowAdapter, MlflowSettings, ms_time, name_filter
from tests.conftest import MLFLOW_TEST_PORT

URL = "http://mlflow.test:5000"
API = f"{URL}/api/2.0/mlflow"
TOKEN = "mlflow-token-never-shown"


def adapter(url: str = URL, **overrides: object) -> MlflowAdapter:
    settings = MlflowSettings.model_validate(
        {"url": url, "timeout": 5, "retries": 2, "backoff": 0, **overrides}
    )
    return MlflowAdapter("registry", settings)


def mlflow_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error_code": code, "message": message})


def version_json(name: str, version: str, ts: int = 1795472603549) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "creation_timestamp": ts,
        "last_updated_timestamp": ts,
        "current_stage": "None",
        "source": "runs:/abc/model",
        "run_id": "abc",
        "status": "READY",
        "tags": [{"key": "lab.scores", "value": "normal"}],
    }


# -- recorded answers ----------------------------------------------------------------


@respx.mock
async def test_models_follow_page_tokens_and_parse_aliases_and_tags() -> None:
    route = respx.get(f"{API}/registered-models/search").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "registered_models": [
                        {
                            "name": "churn",
                            "last_updated_timestamp": 1795472603604,
                            "aliases": [{"alias": "champion", "version": "2"}],
                            "tags": [{"key": "team", "value": "growth"}],
                        }
                    ],
                    "next_page_token": "p2",
                },
            ),
            httpx.Response(200, json={"registered_models": [{"name": "fraud"}]}),
        ]
    )
    churn, fraud = await adapter(page_size=1).models()
    assert churn.name == "churn" and churn.aliases == {"champion": "2"}
    assert churn.tags == {"team": "growth"}
    assert churn.updated_at == datetime(2026, 11, 23, 22, 23, 23, 604000, tzinfo=UTC)
    assert fraud.aliases == {} and fraud.updated_at is None
    first, second = (call.request.url.params for call in route.calls)
    assert first["max_results"] == "1" and "page_token" not in first
    assert second["page_token"] == "p2"


@respx.mock
async def test_no_models_at_all_is_an_empty_answer() -> None:
    respx.get(f"{API}/registered-models/search").respond(json={})
    assert await adapter().models() == ()


@respx.mock
async def test_versions_are_searched_by_name_paged_and_newest_first() -> None:
    route = respx.get(f"{API}/model-versions/search").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "model_versions": [version_json("churn", "2"), version_json("churn", "10")],
                    "next_page_token": "t",
                },
            ),
            httpx.Response(200, json={"model_versions": [version_json("churn", "9")]}),
        ]
    )
    versions = await adapter().versions("churn")
    assert [v.version for v in versions] == ["10", "9", "2"]
    assert versions[0].created_at == datetime(2026, 11, 23, 22, 23, 23, 549000, tzinfo=UTC)
    assert versions[0].tags == {"lab.scores": "normal"} and versions[0].status == "READY"
    assert route.calls[0].request.url.params["filter"] == "name='churn'"


def test_name_filter_quotes_what_mlflow_can_parse() -> None:
    assert name_filter("churn") == "name='churn'"
    assert name_filter("it's") == 'name="it\'s"'
    assert name_filter('say "hi"') == "name='say \"hi\"'"
    assert name_filter('it\'s "x"') == "name LIKE 'it_s _x_'"
    assert name_filter("a\\b") == "name LIKE 'a_b'"


@respx.mock
async def test_like_search_keeps_only_the_exact_name() -> None:
    name = 'it\'s "x"'
    respx.get(f"{API}/model-versions/search").respond(
        json={"model_versions": [version_json(name, "1"), version_json("it_s _x_", "5")]}
    )
    assert [(v.model, v.version) for v in await adapter().versions(name)] == [(name, "1")]


@respx.mock
async def test_versions_of_an_unknown_model_is_an_error() -> None:
    respx.get(f"{API}/model-versions/search").respond(json={})
    respx.get(f"{API}/registered-models/get").mock(
        return_value=mlflow_error(
            404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found"
        )
    )
    with pytest.raises(AdapterError, match="no registered model named 'nope'"):
        await adapter().versions("nope")


@respx.mock
async def test_version_is_none_when_mlflow_has_none() -> None:
    route = respx.get(f"{API}/model-versions/get").mock(
        side_effect=[
            httpx.Response(200, json={"model_version": version_json("churn", "2")}),
            mlflow_error(
                404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=churn, version=9) not found"
            ),
            mlflow_error(400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer"),
        ]
    )
    am = adapter()
    found = await am.version("churn", "2")
    assert found is not None and found.run_id == "abc" and found.number == 2
    assert await am.version("churn", "9") is None
    with pytest.raises(AdapterError, match="HTTP 400: INVALID_PARAMETER_VALUE: Parameter"):
        await am.version("churn", "x")
    assert route.calls[0].request.url.params["name"] == "churn"


@respx.mock
async def test_alias_points_at_a_version() -> None:
    route = respx.get(f"{API}/registered-models/alias").respond(
        json={"model_version": {**version_json("churn", "7"), "aliases": ["champion"]}}
    )
    assert await adapter().alias("churn", "champion") == "7"
    assert dict(route.calls.last.request.url.params) == {"name": "churn", "alias": "champion"}


@pytest.mark.parametrize(
    "answer",
    [
        mlflow_error(400, "INVALID_PARAMETER_VALUE", "Registered model alias nope not found."),
        mlflow_error(404, "RESOURCE_DOES_NOT_EXIST", "Registered model alias nope not found"),
    ],
    ids=["mlflow-3", "older"],
)
@respx.mock
async def test_unset_alias_is_none(answer: httpx.Response) -> None:
    respx.get(f"{API}/registered-models/alias").mock(return_value=answer)
    respx.get(f"{API}/registered-models/get").respond(json={"registered_model": {"name": "m"}})
    assert await adapter().alias("churn", "nope") is None


@respx.mock
async def test_alias_of_an_unknown_model_is_an_error_saying_so() -> None:
    missing = mlflow_error(
        404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found"
    )
    respx.get(f"{API}/registered-models/alias").mock(return_value=missing)
    respx.get(f"{API}/registered-models/get").mock(return_value=missing)
    with pytest.raises(AdapterError, match="no registered model named 'nope'") as info:
        await adapter().alias("nope", "champion")
    assert "case-sensitive" in info.value.hint


@respx.mock
async def test_bad_alias_name_is_mlflows_own_error() -> None:
    respx.get(f"{API}/registered-models/alias").mock(
        return_value=mlflow_error(
            400, "INVALID_PARAMETER_VALUE", "Invalid alias name: 'a b'. Names may only contain"
        )
    )
    with pytest.raises(AdapterError, match="INVALID_PARAMETER_VALUE: Invalid alias name"):
        await adapter().alias("churn", "a b")


@respx.mock
async def test_set_alias_posts_name_alias_version() -> None:
    route = respx.post(f"{API}/registered-models/alias").respond(json={})
    await adapter().set_alias("churn", "champion", "3")
    assert json.loads(route.calls.last.request.content) == {
        "name": "churn",
        "alias": "champion",
        "version": "3",
    }


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("slow"), httpx.Response(500, json={"error_code": "INTERNAL_ERROR"})],
    ids=["read-timeout", "500"],
)
@respx.mock
async def test_set_alias_is_never_resent_once_it_may_have_arrived(fault: Any) -> None:
    route = respx.post(f"{API}/registered-models/alias").mock(
        side_effect=[fault, httpx.Response(200, json={})]
    )
    with pytest.raises(HttpError, match="may have been applied") as info:
        await adapter().set_alias("churn", "champion", "3")
    assert route.call_count == 1 and info.value.in_doubt


@respx.mock
async def test_reads_are_retried_after_a_timeout_and_a_503() -> None:
    route = respx.get(f"{API}/registered-models/alias").mock(
        side_effect=[
            httpx.ReadTimeout("slow"),
            httpx.Response(503),
            httpx.Response(200, json={"model_version": version_json("churn", "4")}),
        ]
    )
    assert await adapter().alias("churn", "champion") == "4"
    assert route.call_count == 3


@respx.mock
async def test_set_alias_errors_are_readable() -> None:
    respx.post(f"{API}/registered-models/alias").mock(
        return_value=mlflow_error(
            404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=churn, version=99) not found"
        )
    )
    with pytest.raises(AdapterError) as info:
        await adapter().set_alias("churn", "champion", "99")
    assert info.value.message == (
        "HTTP 404: RESOURCE_DOES_NOT_EXIST: Model Version (name=churn, version=99) not found"
    )
    assert info.value.url == f"{API}/registered-models/alias" and info.value.hint


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"registered_models": {"name": "x"}},
        {"registered_models": [{"aliases": []}]},
        {"registered_models": ["churn"]},
        {"registered_models": [{"name": "x", "last_updated_timestamp": "soon"}]},
        {"registered_models": [{"name": "x", "aliases": [{"version": "1"}]}]},
        {"registered_models": [{"name": "x", "tags": {"k": "v"}}]},
        {"registered_models": [{"name": "x"}], "next_page_token": 7},
    ],
    ids=[
        "list",
        "models-not-list",
        "no-name",
        "string-entry",
        "bad-time",
        "alias-without-name",
        "tags-object",
        "token-not-string",
    ],
)
@respx.mock
async def test_malformed_model_answers_are_adapter_errors(body: Any) -> None:
    respx.get(f"{API}/registered-models/search").respond(json=body)
    with pytest.raises(AdapterError, match="malformed response"):
        await adapter().models()


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, json={}),
        httpx.Response(200, json={"model_version": {"name": "churn"}}),
        httpx.Response(200, text="<html>login</html>"),
    ],
    ids=["no-model-version", "no-version", "html"],
)
@respx.mock
async def test_malformed_alias_answers_are_adapter_errors(reply: httpx.Response) -> None:
    respx.get(f"{API}/registered-models/alias").mock(return_value=reply)
    with pytest.raises(AdapterError, match="malformed response"):
        await adapter().alias("churn", "champion")


@respx.mock
async def test_a_page_token_that_does_not_advance_is_an_error() -> None:
    respx.get(f"{API}/registered-models/search").respond(
        json={"registered_models": [{"name": "x"}], "next_page_token": "same"}
    )
    with pytest.raises(AdapterError, match="page token does not advance"):
        await adapter().models()


@respx.mock
async def test_unreachable_mlflow_names_mlflow_and_hides_the_token() -> None:
    respx.get(f"{API}/registered-models/search").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(AdapterError) as info:
        await adapter(bearer_token=TOKEN, retries=0).models()
    assert info.value.hint == "is MLflow running and reachable?"
    assert TOKEN not in str(info.value)


@respx.mock
async def test_a_token_echoed_by_mlflow_is_masked() -> None:
    respx.get(f"{API}/registered-models/search").mock(
        return_value=mlflow_error(401, "UNAUTHENTICATED", f"token Bearer {TOKEN} is expired")
    )
    with pytest.raises(AdapterError, match="UNAUTHENTICATED") as info:
        await adapter(bearer_token=TOKEN).models()
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_timestamps_are_aware_utc() -> None:
    assert ms_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert ms_time("1795472603549") == datetime(2026, 11, 23, 22, 23, 23, 549000, tzinfo=UTC)
    assert ms_time(None) is None


def test_page_size_is_bounded_by_mlflows_limit() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        MlflowSettings.model_validate({"url": URL, "page_size": 5000})


# -- a real MLflow server ------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
MLFLOW = Path(os.environ.get("MLCONSOLE_TEST_MLFLOW") or ROOT / ".venv-mlflow" / "bin" / "mlflow")
PORT = MLFLOW_TEST_PORT
START_DEADLINE = 120.0
ODD = 'it\'s "odd" a_b\\c'
"""A name with both quotes, a LIKE wildcard and a backslash."""
EXTRA = ("zeta-1", "zeta-2", "zeta-3")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _seed(url: str) -> None:
    """Models, versions and one alias, through MLflow's REST API."""
    with httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=30) as api:

        def post(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
            response = api.post(endpoint, json=body)
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = response.json()
            return answer

        run_id = post("runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
        counts = {"churn": 3, ODD: 2, "it's": 1, **dict.fromkeys(EXTRA, 1)}
        for name, versions in counts.items():
            post("registered-models/create", {"name": name})
            for _ in range(versions):
                source = f"runs:/{run_id}/model"
                post("model-versions/create", {"name": name, "source": source, "run_id": run_id})
        post("registered-models/alias", {"name": "churn", "alias": "champion", "version": "2"})


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A lean MLflow server on 127.0.0.1:MLFLOW_TEST_PORT with its own temp dir, seeded."""
    if not MLFLOW.exists():
        pytest.fail(f"no MLflow at {MLFLOW}; run scripts/setup.sh (it installs .venv-mlflow)")
    if not _port_free(PORT):
        pytest.fail(f"port {PORT} is taken; is another MLflow test server still running?")
    home = tmp_path_factory.mktemp("mlflow")
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(MLFLOW),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{home}/mlflow.db",
            "--default-artifact-root",
            str(home / "artifacts"),
        ],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{PORT}"
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if proc.poll() is not None:
                tail = (home / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"MLflow exited with {proc.returncode}:\n{tail}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"MLflow did not answer /health within {START_DEADLINE:g}s")
            time.sleep(0.25)
        _seed(url)
        yield url
    finally:
        # The server forks workers; end the whole session it leads.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


@pytest.mark.integration
async def test_real_models_are_listed_across_pages(mlflow_url: str) -> None:
    models = {m.name: m for m in await adapter(mlflow_url, page_size=2).models()}
    assert {"churn", ODD, "it's", *EXTRA} <= set(models)
    assert models["churn"].aliases == {"champion": "2"}
    assert models["churn"].updated_at is not None and models["churn"].updated_at.tzinfo == UTC


@pytest.mark.integration
async def test_real_versions_are_paged_and_newest_first(mlflow_url: str) -> None:
    registry = adapter(mlflow_url, page_size=2)
    churn = await registry.versions("churn")
    assert [v.version for v in churn] == ["3", "2", "1"]
    assert all(v.status == "READY" and v.run_id and v.created_at for v in churn)
    assert [v.version for v in await registry.versions(ODD)] == ["2", "1"]
    assert [(v.model, v.version) for v in await registry.versions("it's")] == [("it's", "1")]
    with pytest.raises(AdapterError, match="no registered model named 'nope'"):
        await registry.versions("nope")


@pytest.mark.integration
async def test_real_version_lookup(mlflow_url: str) -> None:
    registry = adapter(mlflow_url)
    found = await registry.version("churn", "2")
    assert found is not None and found.model == "churn" and found.source.startswith("runs:/")
    assert await registry.version("churn", "99") is None
    assert await registry.version("nope", "1") is None


@pytest.mark.integration
async def test_real_aliases_read_set_and_missing(mlflow_url: str) -> None:
    registry = adapter(mlflow_url)
    assert await registry.alias("churn", "champion") == "2"
    assert await registry.alias("churn", "challenger") is None
    with pytest.raises(AdapterError, match="no registered model named 'nope'"):
        await registry.alias("nope", "champion")

    await registry.set_alias("churn", "challenger", "3")
    assert await registry.alias("churn", "challenger") == "3"
    await registry.set_alias("churn", "challenger", "1")  # MLflow overwrites silently
    assert await registry.alias("churn", "challenger") == "1"
    assert await registry.alias(ODD, "challenger") is None

    with pytest.raises(AdapterError, match="RESOURCE_DOES_NOT_EXIST") as info:
        await registry.set_alias("churn", "challenger", "99")
    assert not getattr(info.value, "in_doubt", True)  # a 4xx: certainly not applied
    with pytest.raises(AdapterError, match="reserved"):
        await registry.set_alias("churn", "latest", "1")
    assert await registry.alias("churn", "challenger") == "1"
    await registry.aclose()
