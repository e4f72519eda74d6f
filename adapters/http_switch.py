"""An on/off switch behind any small HTTP API: a serving fallback, a pipeline's pause.

The requests are described in the source's ``options:``::

    fallback:
      type: http-switch
      url: http://127.0.0.1:8080
      options:
        read: {method: GET, path: "/admin/fallback?model={target}", field: enabled}
        enable: {method: POST, path: /admin/fallback, body: {model: "{target}", enabled: true}}
        disable: {method: POST, path: /admin/fallback, body: {model: "{target}", enabled: false}}

(``enable``/``disable``, because YAML reads ``on``/``off`` as booleans.)

The console reads every model's switch on each sweep. Where the service answers for
every target at once, ``read_all`` makes that one request per sweep instead of one
per model (``read`` still reads one target, e.g. to read an action back)::

        read_all: {method: GET, path: /admin/state, items: serving, field: fallback}

``read_all.items`` is the dotted path to the targets in the answer: an object keyed
by target (``{"serving": {"fraud-detector": {"fallback": true}, ...}}``), or, with
``read_all.key`` naming the field of each entry that holds its target, a list of
entries (``items: models`` and ``key: name`` for ``{"models": [{"name":
"fraud-detector", "fallback": true}]}``). ``read_all.field`` is the dotted path to
the state inside each entry (empty for the entry itself), compared with
``read_all.on_value``. ``read_all`` has no ``{target}``: it is one request for all.

``{target}`` (usually a model name) is substituted in ``path``, URL-encoded,
and in every string of ``body``, as it is. ``read.field`` is a dotted path into
the JSON answer (``data.models.0.enabled``; empty for the whole answer), and
``read.on_value`` the value there that means "on". A value of another kind
than ``on_value`` (``"true"`` where ``true`` is expected, a ``null``) is an
error, never taken for "off".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
)

from adapters.base import AdapterError, SwitchAdapter
from adapters.records import SwitchStates
from adapters.settings import SourceSettings

PLACEHOLDER = "{target}"
#: A dotted path into a JSON answer (``data.models.0.on``), or empty for all of it.
DOTTED = r"^([^.]+(\.[^.]+)*)?$"
_BRACES = re.compile(r"\{[^{}]*\}")


def _upper(raw: Any) -> Any:
    return raw.upper() if isinstance(raw, str) else raw


Method = Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], BeforeValidator(_upper)]


class SwitchRequest(BaseModel):
    """One HTTP request of a switch; ``{target}`` is substituted in ``path`` and ``body``."""

    model_config = ConfigDict(extra="forbid")

    method: Method = "POST"
    """HTTP method (POST is never retried once it may have reached the server)."""
    path: str = Field(min_length=1)
    """Path after the source's ``url``, query allowed: ``/admin/fallback?model={target}``."""
    body: JsonValue = None
    """Optional JSON body; ``{target}`` is substituted in every string in it."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra headers for this request only. Never logged."""

    @field_validator("path")
    @classmethod
    def _check_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("the path must start with '/'")
        unknown = sorted({p for p in _BRACES.findall(path) if p != PLACEHOLDER})
        if unknown:
            raise ValueError(f"only {PLACEHOLDER} is substituted, not {', '.join(unknown)}")
        return path


class ReadRequest(SwitchRequest):
    """The request that reads the switch, and where in its answer the state is."""

    method: Method = "GET"
    field: str = Field(default="", pattern=DOTTED)
    """Dotted path to the state in the JSON answer (``data.enabled``, ``items.0.on``);
    empty for the whole answer."""
    on_value: JsonValue = True
    """The value at ``field`` that means "on"."""


def _mentions_target(value: Any) -> bool:
    if isinstance(value, str):
        return PLACEHOLDER in value
    if isinstance(value, list):
        return any(_mentions_target(item) for item in value)
    if isinstance(value, dict):
        return any(_mentions_target(item) for item in value.values())
    return False


class ReadAllRequest(SwitchRequest):
    """The one request that reads every target's state, and where each is in its answer."""

    method: Method = "GET"
    items: str = Field(default="", pattern=DOTTED)
    """Dotted path to the targets in the answer: an object keyed by target, or a list
    of entries (then ``key`` says which field names the target); empty for the whole
    answer."""
    key: str = Field(default="", pattern=DOTTED)
    """For a list of entries: the dotted path, in each entry, to its target's name.
    Empty when ``items`` is an object keyed by target."""
    field: str = Field(default="", pattern=DOTTED)
    """Dotted path to the state inside each target's entry; empty for the entry itself."""
    on_value: JsonValue = True
    """The value at ``field`` that means "on"."""

    @field_validator("path")
    @classmethod
    def _one_request_path(cls, path: str) -> str:
        if PLACEHOLDER in path:
            raise ValueError(f"read_all is one request for every target: no {PLACEHOLDER} here")
        return path

    @field_validator("body")
    @classmethod
    def _one_request_body(cls, body: Any) -> Any:
        if _mentions_target(body):
            raise ValueError(f"read_all is one request for every target: no {PLACEHOLDER} here")
        return body


class HttpSwitchSettings(SourceSettings):
    """An ``http-switch`` source: the base settings plus its requests."""

    read: ReadRequest
    """Reads the state for a target."""
    read_all: ReadAllRequest | None = None
    """Reads every target's state in one request, when the service can: the console's
    sweep then sends one request instead of one per model."""
    enable: SwitchRequest
    """Turns the switch on for a target."""
    disable: SwitchRequest
    """Turns the switch off for a target."""


def substitute(value: Any, target: str) -> Any:
    """``value`` with ``{target}`` replaced in every string, recursively."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, target)
    if isinstance(value, list):
        return [substitute(item, target) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, target) for key, item in value.items()}
    return value


def render_path(path: str, target: str) -> str:
    return path.replace(PLACEHOLDER, quote(target, safe=""))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


MISSING = object()


def lookup(answer: Any, field: str) -> Any:
    """The value at dotted ``field`` in ``answer``; ``MISSING`` when there is none."""
    value = answer
    for part in field.split(".") if field else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


class HttpSwitchAdapter(SwitchAdapter):
    """A switch read and flipped through configurable HTTP requests."""

    settings_model = HttpSwitchSettings

    def __init__(self, name: str, settings: SourceSettings) -> None:
        super().__init__(name, settings)
        if not isinstance(settings, HttpSwitchSettings):
            raise TypeError("http-switch needs HttpSwitchSettings (its `options:`)")
        self.switch = settings
        requests = (settings.read, settings.read_all, settings.enable, settings.disable)
        request_secrets = [
            value.get_secret_value()
            for request in requests
            if request is not None
            for value in request.headers.values()
        ]
        # httpx loads with the first switch built, not with its settings: the config
        # check imports this module for HttpSwitchSettings before the first paint.
        from adapters.http import HttpClient

        self._http = HttpClient(
            name, settings, system="the switch's service", extra_secrets=request_secrets
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def error(self, message: str, *, url: str = "", hint: str = "") -> AdapterError:
        return self._http.error(message, url=url, hint=hint)

    async def state(self, target: str) -> bool:
        """Send ``read`` and compare the value at ``read.field`` with ``read.on_value``."""
        read = self.switch.read
        path = render_path(read.path, self._target(target))
        answer = await self._send(read, target, json_answer=True)
        state = self._state_in(answer, read.field, read.on_value, "read", "the answer", path)
        if isinstance(state, AdapterError):
            raise state
        return state

    async def states(self, targets: Sequence[str]) -> SwitchStates:
        """With ``read_all``: one request, each target's state read from its entry.
        Without: one ``read`` per target (the contract's default)."""
        read_all = self.switch.read_all
        if read_all is None:
            return await super().states(targets)
        headers = {k: v.get_secret_value() for k, v in read_all.headers.items()} or None
        answer = await self._http.request_json(
            read_all.method, read_all.path, json=read_all.body, headers=headers
        )
        entries = self._entries(answer, read_all)
        on: dict[str, bool] = {}
        errors: dict[str, str] = {}
        for target in targets:
            if target not in entries:
                errors[target] = str(
                    self.error(
                        f"{target!r} is not in the answer's "
                        f"{f'`{read_all.items}`' if read_all.items else 'targets'}",
                        url=self._http.url_for(read_all.path),
                    )
                )
                continue
            state = self._state_in(
                entries[target],
                read_all.field,
                read_all.on_value,
                "read_all",
                f"{target!r}'s entry",
                read_all.path,
            )
            if isinstance(state, AdapterError):
                errors[target] = str(state)
            else:
                on[target] = state
        if errors and not on:
            raise self.error(
                f"no target's state could be read from the answer: {next(iter(errors.values()))}",
                url=self._http.url_for(read_all.path),
                hint="check `read_all.items`, `read_all.key` and `read_all.field`",
            )
        return SwitchStates(on, errors)

    def _entries(self, answer: Any, read_all: ReadAllRequest) -> dict[str, Any]:
        """Each target's entry in a ``read_all`` answer, by target."""
        url = self._http.url_for(read_all.path)
        collection = lookup(answer, read_all.items)
        where = f"`{read_all.items}`" if read_all.items else "the answer"
        if collection is MISSING:
            keys = ", ".join(map(str, value_keys(answer, read_all.items))) or "none"
            raise self.error(
                f"the answer has no {where} (keys at its parent: {keys})",
                url=url,
                hint="set `read_all.items` to the dotted path of the targets in the answer",
            )
        if read_all.key:
            if not isinstance(collection, list):
                raise self.error(
                    f"{where} is {_kind(collection)}, not a list of entries",
                    url=url,
                    hint="drop `read_all.key` when the targets are an object keyed by target",
                )
            entries: dict[str, Any] = {}
            for entry in collection:
                name = lookup(entry, read_all.key)
                if isinstance(name, str):
                    entries[name] = entry
            return entries
        if not isinstance(collection, dict):
            raise self.error(
                f"{where} is {_kind(collection)}, not an object keyed by target",
                url=url,
                hint="for a list of entries, set `read_all.key` to the field naming each target",
            )
        return collection

    def _state_in(
        self, answer: Any, field: str, on_value: Any, request: str, what: str, path: str
    ) -> bool | AdapterError:
        """The state at ``field`` of ``answer``, or the error that says why it is unclear
        (a value of another kind than ``on_value`` is never taken for off)."""
        value = lookup(answer, field)
        where = f"`{field}`" if field else what
        if value is MISSING:
            keys = ", ".join(map(str, value_keys(answer, field))) or "none"
            return self.error(
                f"{what} has no {where} (keys at its parent: {keys})",
                url=self._http.url_for(path),
                hint=f"set `{request}.field` to the dotted path of the state in the answer",
            )
        if _kind(value) != _kind(on_value):
            return self.error(
                f"{where} is {self._http.excerpt(repr(value), 60)}, "
                f"not a {_kind(on_value)} like `on_value` "
                f"{self._http.excerpt(repr(on_value), 60)}",
                url=self._http.url_for(path),
                hint=f"set `{request}.on_value` to the value that means on",
            )
        return bool(value == on_value)

    async def set_state(self, target: str, on: bool) -> None:
        """Send ``enable`` or ``disable``; the answer is not read (read the state back)."""
        await self._send(self.switch.enable if on else self.switch.disable, target)

    async def _send(self, request: SwitchRequest, target: str, *, json_answer: bool = False) -> Any:
        target = self._target(target)
        path = render_path(request.path, target)
        headers = {k: v.get_secret_value() for k, v in request.headers.items()} or None
        body = substitute(request.body, target)
        if json_answer:
            return await self._http.request_json(request.method, path, json=body, headers=headers)
        await self._http.send(request.method, path, json=body, headers=headers)
        return None

    def _target(self, target: str) -> str:
        if not target:
            raise self.error("the switch needs a target (a model name)")
        return target


def value_keys(answer: Any, field: str) -> list[Any]:
    """The keys (or indexes) next to where ``field`` was looked for, for the error."""
    parent = lookup(answer, field.rpartition(".")[0]) if "." in field else answer
    if isinstance(parent, dict):
        return sorted(parent, key=str)[:20]
    if isinstance(parent, list):
        return list(range(min(len(parent), 20)))
    return []
