"""Check each source's settings against its adapter's own settings model.

A source's adapter-specific keys live under ``options:`` (an ``http-switch``'s
requests, an MLflow source's ``page_size``). The config model cannot know them,
so they are checked here, by the adapter's ``settings_model``, exactly as
:func:`console.sources.build.build_adapters` will build the settings: the source's
base fields with ``options`` merged over them.

Problems come back as ``(location, message, hint)``, the shape of
:meth:`console.config.models.Config.problems`, with locations into the YAML
(``("sources", "fallback", "options", "read", "field")``) for the loader to
turn into file:line:col.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from adapters import registry
from adapters.settings import SourceSettings
from console.config.located import allowed_keys, unknown_key_hint
from console.config.models import Config, SourceConfig

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str, str]


def source_option_problems(config: Config, *, only_with_options: bool = False) -> list[Problem]:
    """Every problem of every enabled source's adapter settings, and unknown adapter types.

    ``only_with_options`` loads adapters only for sources that carry ``options``:
    the others' settings were already checked by the config model, and importing
    their adapters (and HTTP clients) is left until after the first paint.
    """
    problems: list[Problem] = []
    for name, source in config.sources.items():
        if not source.enabled:
            continue
        installed = registry.is_installed(source.type)
        if only_with_options and not source.options and installed:
            continue
        if not installed:
            problems.append(
                (
                    ("sources", name, "type"),
                    f"unknown adapter type {source.type!r}",
                    f"installed types: {', '.join(registry.available()) or 'none'}",
                )
            )
            continue
        try:
            cls = registry.load(source.type)
        except registry.AdapterLoadError as exc:
            problems.append(
                (("sources", name, "type"), str(exc), "reinstall the package that provides it")
            )
            continue
        problems.extend(_settings_problems(name, source, cls.settings_model))
    return problems


def _settings_problems(
    name: str, source: SourceConfig, model: type[SourceSettings]
) -> list[Problem]:
    data = {
        **source.model_dump(include=set(model.model_fields)),
        **source.options,
    }
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [_problem(name, source, model, error) for error in exc.errors(include_url=False)]
    return []


def _problem(name: str, source: SourceConfig, model: type[SourceSettings], error: Any) -> Problem:
    loc: Loc = tuple(
        p for p in error["loc"] if isinstance(p, int) or not str(p).startswith("function-")
    )
    # A key written at the source's top level is reported there; everything the
    # adapter adds (and anything given under `options:`) is under `options`.
    top_level = bool(loc) and loc[0] in SourceConfig.model_fields and loc[0] not in source.options
    where: Loc = ("sources", name, *loc) if top_level else ("sources", name, "options", *loc)
    kind = error["type"]
    message = str(error["msg"])
    hint = ""
    if kind == "extra_forbidden":
        message = "unknown key"
        allowed = allowed_keys(model, loc[:-1])
        if len(loc) == 1:  # directly under `options:`: the adapter's own keys belong there
            allowed = [k for k in allowed if k not in SourceConfig.model_fields]
        hint = unknown_key_hint(str(loc[-1]) if loc else None, allowed)
        if not hint and len(loc) == 1:
            hint = f"the {source.type} adapter takes no `options:`"
    elif kind == "missing" and loc:
        under = " under `options:`" if len(loc) == 1 and not top_level else ""
        hint = f"add `{loc[-1]}:`{under}"
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind.startswith(("float", "int")):
        hint = "write a number"
    return where, message, hint
