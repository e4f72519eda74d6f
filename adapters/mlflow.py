"""MLflow model registry over its REST API (``/api/2.0/mlflow``), with httpx.

Models, their versions, and the aliases that pick the version that serves.
MLflow keeps no history of alias changes and has no compare-and-set: callers
read an alias, set it, then read it back (:meth:`MlflowAdapter.alias` always
asks the server). Setting an alias is a POST, so it is not retried once it may
have reached MLflow (see :mod:`adapters.http`).

Errors arrive as ``{"error_code": ..., "message": ...}`` with a 4xx or 5xx
status and become :class:`~adapters.base.AdapterError` with MLflow's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import Field

from adapters.base import AdapterError, RegistryAdapter
from adapters.http import HttpClient, HttpError
from adapters.records import ModelVersion, RegisteredModel
from adapters.settings import SourceSettings

API = "/api/2.0/mlflow"
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})
T = TypeVar("T")


class MlflowSettings(SourceSettings):
    """How to reach an MLflow tracking server's model registry."""

    page_size: int = Field(default=1000, ge=1, le=1000)
    """Results asked for per page of a search (MLflow allows up to 1000 models a page)."""


class Malformed(ValueError):
    """An answer that is JSON but not of the shape MLflow documents."""


def describe_error(response: httpx.Response, payload: Any) -> tuple[str, str] | None:
    """MLflow's ``{"error_code", "message"}`` as a message and a hint."""
    if not isinstance(payload, dict):
        return None
    code, message = payload.get("error_code"), payload.get("message")
    if not isinstance(code, str) and not isinstance(message, str):
        return None
    text = ": ".join(str(part) for part in (code, message) if part)
    hints = {
        "RESOURCE_DOES_NOT_EXIST": "check the model name and version",
        "PERMISSION_DENIED": "the MLflow user lacks the permission; check the credentials",
        "UNAUTHENTICATED": "MLflow refused the credentials; check `basic_auth` or `bearer_token`",
    }
    return text, hints.get(str(code), "")


def ms_time(raw: Any) -> datetime | None:
    """MLflow's milliseconds since the epoch as an aware UTC datetime; None when absent."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise Malformed(f"a timestamp is {raw!r}, not milliseconds since the epoch")
    try:
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise Malformed(f"a timestamp is {raw!r}, not milliseconds since the epoch") from None


def _json_kind(raw: Any) -> str:
    """What a JSON value is, without quoting it (an answer may echo a credential)."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if raw is None:
        return "null"
    return kinds.get(type(raw), "a number" if isinstance(raw, int | float) else "a value")


def _text(raw: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise Malformed(f"an entry lacks `{key}`")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Malformed(f"`{key}` is {_json_kind(value)}, not a string")
    if required and value == "":
        raise Malformed(f"`{key}` is empty")
    return str(value)


def _pairs(raw: Any, key: str, value: str) -> dict[str, str]:
    """MLflow's ``[{"key": k, "value": v}]`` lists (tags, aliases) as a dict."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise Malformed(f"expected a list of {key}/{value} pairs, got {_json_kind(raw)}")
    out: dict[str, str] = {}
    for item in raw:
        if not isinstance(item, dict):
            raise Malformed(f"expected a {key}/{value} pair, got {_json_kind(item)}")
        out[_text(item, key, required=True)] = _text(item, value)
    return out


def _object(raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise Malformed(f"expected a JSON object, got {_json_kind(raw)}")
    return raw


def parse_model(raw: Any) -> RegisteredModel:
    """One ``registered_models[]`` entry."""
    raw = _object(raw)
    return RegisteredModel(
        name=_text(raw, "name", required=True),
        aliases=_pairs(raw.get("aliases"), "alias", "version"),
        tags=_pairs(raw.get("tags"), "key", "value"),
        updated_at=ms_time(raw.get("last_updated_timestamp")),
    )


def parse_version(raw: Any) -> ModelVersion:
    """One ``model_version`` object."""
    raw = _object(raw)
    return ModelVersion(
        model=_text(raw, "name", required=True),
        version=_text(raw, "version", required=True),
        created_at=ms_time(raw.get("creation_timestamp")),
        tags=_pairs(raw.get("tags"), "key", "value"),
        status=_text(raw, "status"),
        source=_text(raw, "source"),
        run_id=_text(raw, "run_id"),
    )


def name_filter(model: str) -> str:
    """A ``model-versions/search`` filter for versions of ``model``.

    MLflow's filter parser strips the quotes around a value and unescapes
    nothing, so a name is quoted with the quote it does not contain. A name
    with both quotes (or a backslash, which some databases treat as LIKE's
    escape) is matched with ``LIKE``, each such character a ``_`` wildcard; the
    caller keeps only exact matches.
    """
    if "\\" not in model:
        if "'" not in model:
            return f"name='{model}'"
        if '"' not in model:
            return f'name="{model}"'
    pattern = "".join("_" if c in "'\"\\" else c for c in model)
    return f"name LIKE '{pattern}'"


def _error_code(exc: HttpError) -> str:
    payload = exc.payload if isinstance(exc.payload, dict) else {}
    return str(payload.get("error_code") or "")


def _is_not_found(exc: HttpError) -> bool:
    """MLflow's "no such model/version/alias": a 400 or 404 saying "not found"."""
    payload = exc.payload if isinstance(exc.payload, dict) else {}
    message = str(payload.get("message") or "").lower()
    return (
        exc.status in (400, 404) and _error_code(exc) in NOT_FOUND_CODES and "not found" in message
    )


class MlflowAdapter(RegistryAdapter):
    """Registered models, versions and aliases from an MLflow tracking server."""

    settings_model = MlflowSettings

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        self.page_size = settings.page_size if isinstance(settings, MlflowSettings) else 1000
        self._http = HttpClient(
            name, settings, system="MLflow", base_path=API, describe=describe_error
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def error(self, message: str, *, url: str = "", hint: str = "") -> AdapterError:
        return self._http.error(message, url=url, hint=hint)

    async def models(self) -> tuple[RegisteredModel, ...]:
        """Every registered model, following ``next_page_token``."""
        path = "/registered-models/search"
        raw = await self._search(path, "registered_models", {})
        return self._parse(path, lambda: tuple(parse_model(item) for item in raw))

    async def versions(self, model: str) -> tuple[ModelVersion, ...]:
        """Every version of ``model``, highest version number first.

        Raises :class:`AdapterError` when there is no such model.
        """
        path = "/model-versions/search"
        params = {"filter": name_filter(model), "order_by": "version_number DESC"}
        raw = await self._search(path, "model_versions", params)
        found = self._parse(path, lambda: tuple(parse_version(item) for item in raw))
        exact = [v for v in found if v.model == model]
        if not exact and not await self._model_exists(model):
            raise self._no_such_model(model, path)
        return tuple(sorted(exact, key=lambda v: (v.number, v.version), reverse=True))

    async def version(self, model: str, version: str) -> ModelVersion | None:
        """One version, or None when MLflow has no such version (or no such model)."""
        path = "/model-versions/get"
        try:
            body = await self._http.request_json(
                "GET", path, params={"name": model, "version": version}
            )
        except HttpError as exc:
            if exc.status == 404 and _error_code(exc) == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return self._parse(path, lambda: parse_version(_object(body).get("model_version")))

    async def alias(self, model: str, alias: str) -> str | None:
        """The version ``alias`` points at, read from the server; None if the alias is unset.

        Raises :class:`AdapterError` when there is no such model.
        """
        path = "/registered-models/alias"
        try:
            body = await self._http.request_json(
                "GET", path, params={"name": model, "alias": alias}
            )
        except HttpError as exc:
            if not _is_not_found(exc):
                raise
            # MLflow words "no such alias" and "no such model" differently from one
            # release to the next; ask about the model itself to tell them apart.
            if await self._model_exists(model):
                return None
            raise self._no_such_model(model, path) from None
        return self._parse(path, lambda: parse_version(_object(body).get("model_version"))).version

    async def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (MLflow overwrites silently)."""
        if not (model and alias and version):
            raise self.error("set_alias needs a model, an alias and a version")
        await self._http.request_json(
            "POST",
            "/registered-models/alias",
            json={"name": model, "alias": alias, "version": version},
        )

    async def _model_exists(self, model: str) -> bool:
        try:
            await self._http.request_json("GET", "/registered-models/get", params={"name": model})
        except HttpError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def _no_such_model(self, model: str, path: str) -> AdapterError:
        return self.error(
            f"no registered model named {model!r}",
            url=self._http.url_for(path),
            hint="check the model name (MLflow names are case-sensitive)",
        )

    async def _search(self, path: str, key: str, params: Mapping[str, str]) -> list[Any]:
        """Every item of a paged search: pages follow ``next_page_token`` to the end."""
        items: list[Any] = []
        seen: set[str] = set()
        token: str | None = None
        while True:
            query: dict[str, Any] = {**params, "max_results": self.page_size}
            if token:
                query["page_token"] = token
            body = await self._http.request_json("GET", path, params=query)
            body = {} if body is None else body  # MLflow omits empty lists: `{}`
            if not isinstance(body, dict):
                raise self._malformed(path, f"expected a JSON object, got {_json_kind(body)}")
            page = body.get(key) or []
            if not isinstance(page, list):
                raise self._malformed(path, f"`{key}` is not a list")
            items.extend(page)
            token = body.get("next_page_token") or None
            if token is None:
                return items
            if not isinstance(token, str) or token in seen:
                raise self._malformed(path, "the page token does not advance")
            seen.add(token)

    def _parse(self, path: str, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except (Malformed, TypeError, ValueError, AttributeError, KeyError) as exc:
            raise self._malformed(path, str(exc)) from None

    def _malformed(self, path: str, detail: str) -> AdapterError:
        return self.error(
            f"malformed response: {detail}",
            url=self._http.url_for(path),
            hint="is `url` an MLflow tracking server (3.x)?",
        )
