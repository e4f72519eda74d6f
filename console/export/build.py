"""An incident's export, built from a session's records: its timeline, the impact measured
on its SLI, and the links into Prometheus and the registry; written as ``INC-N.md``
and ``INC-N.json``. One path for ``mlconsole export`` and the incident screen's
``e``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.config.models import Config
    from console.export.document import ExportDocument
    from console.incidents.model import Incident
    from console.incidents.timeline import Event
    from console.session import Session


def export_links(config: Config, incident: Incident | None = None) -> tuple[str | None, str | None]:
    """The addresses exports link to, as people open them in a browser (each source's
    ``external_url``, else its ``url``): the metrics source of the incident's SLI (else
    the first ``prometheus``), and the registry."""
    from console.incidents.live import incident_sli

    sli = incident_sli(config, incident) if incident is not None else None
    metrics = config.sources.get(config.metrics_source_for(sli) or "") if sli else None
    if metrics is None:
        metrics = next((s for s in config.sources.values() if s.type == "prometheus"), None)
    registry_name = config.actions.registry
    registry = config.sources.get(registry_name) if registry_name else None
    if registry is None:
        registry = next((s for s in config.sources.values() if s.type == "mlflow"), None)
    return (
        metrics.browser_url() if metrics is not None else None,
        registry.browser_url() if registry is not None else None,
    )


def export_document(records: Session, incident: Incident) -> ExportDocument:
    """The export of ``incident``: its timeline, and its impact measured by a range query
    of the SLI's own PromQL over the incident window (kept once it is resolved)."""
    import asyncio

    from console.export.derive import build_document
    from console.incidents.impact import impact_event
    from console.sources.build import build_adapters

    book = records.book
    events = records.timeline(incident)

    async def measure() -> Event | None:
        adapters, _failures = build_adapters(records.config)
        try:
            return await impact_event(
                book, incident, records.config, adapters, events, now=book.clock()
            )
        finally:
            for adapter in adapters.values():
                await adapter.aclose()

    impact = asyncio.run(measure())
    if impact is None and incident.resolved_at is not None:
        events = records.timeline(incident)  # with the reading kept just now, if any
    prometheus, registry = export_links(records.config, incident)
    return build_document(
        incident, events, prometheus_url=prometheus, registry_url=registry, measured=impact
    )


def export_text(records: Session, incident: Incident, fmt: str, path: Path | None) -> str:
    """Build the export and write it to ``path`` if given; the text either way."""
    from console.export.files import write_export

    return str(write_export(export_document(records, incident), fmt, path))


def export_files(records: Session, incident: Incident, directory: Path) -> list[Path]:
    """Write ``INC-N.md`` and ``INC-N.json`` into ``directory``; their paths. A draft
    someone may have edited is never overwritten: a later export is named
    ``INC-N-<UTC time>.md`` (and ``.json``) instead."""
    from console.export.files import write_export

    doc = export_document(records, incident)
    stem = incident.id
    if (directory / f"{stem}.md").exists() or (directory / f"{stem}.json").exists():
        stem += time.strftime("-%Y%m%dT%H%M%SZ", time.gmtime())
    paths = [directory / f"{stem}.md", directory / f"{stem}.json"]
    for path in paths:
        write_export(doc, path.suffix[1:], path)
    return paths
