"""Build the enabled sources' adapters from the config.

Each source's adapter is loaded through the registry (a plug-in's entry point) and
constructed with its settings; one that fails is reported as a down source.
"""

from __future__ import annotations

from adapters import registry
from adapters.base import Adapter, AlertsAdapter
from adapters.redaction import Redactor
from console.config.models import Config


def build_adapters(config: Config) -> tuple[dict[str, Adapter], dict[str, str]]:
    """Instantiate the enabled sources. Returns (adapters, load errors by source name).

    A source whose adapter fails to import or construct is reported, not raised:
    the console runs on with what it has and shows that source as down.
    """
    adapters: dict[str, Adapter] = {}
    failures: dict[str, str] = {}
    for name, source in config.sources.items():
        if not source.enabled:
            continue
        try:
            cls = registry.load(source.type)
            settings = cls.settings_model.model_validate(
                {
                    **source.model_dump(include=set(cls.settings_model.model_fields)),
                    **source.options,
                }
            )
            adapter = cls(name, settings)
            if isinstance(adapter, AlertsAdapter):  # alerts name their model by this label
                adapter.model_label = config.model_label
            adapters[name] = adapter
        except Exception as exc:  # a broken plug-in is shown as a down source
            # Its message may quote the settings it refused: mask their credentials.
            failures[name] = Redactor.for_settings(source)(f"{name}: {exc}")
    return adapters, failures
