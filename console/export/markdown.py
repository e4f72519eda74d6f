"""The export as a Markdown postmortem draft: every value from outside escaped."""

from __future__ import annotations

from collections.abc import Callable

from console.export.document import ExportDocument
from console.export.schema import SECTIONS, Link
from console.export.words import (
    code_block,
    md_code,
    md_escape,
    offset_text,
    seconds_text,
    value_text,
    verification_line,
)
from console.text import inert

# -- Markdown ---------------------------------------------------------------------------


def _link_line(link: Link) -> str:
    title, url = md_escape(link["title"]), link["url"]
    clean = inert(url) == url and not any(c in url for c in " <>")
    if url.startswith(("http://", "https://")) and clean:
        # md_escape has escaped the title's brackets: escaping them again showed a
        # backslash and left the bracket bare.
        target = url.replace("(", "%28").replace(")", "%29")
        return f"- [{title}]({target})"
    return f"- {title}: {md_code(url)}"


def _md_header(doc: ExportDocument) -> list[str]:
    inc = doc.incident
    facts = [
        ("Model", md_code(inc.model)),
        ("Alert", f"{md_code(inc.alertname)} ({md_escape(inc.severity)})"),
        ("State", md_escape(inc.state)),
        ("Owner", md_escape(inc.owner) if inc.owner else "none"),
        ("Opened", f"{inc.opened_at} by {md_escape(inc.opened_by)}"),
        (
            "Resolved",
            f"{inc.resolved_at} by {md_escape(inc.resolved_by or 'unknown')}"
            if inc.resolved_at
            else "not resolved",
        ),
    ]
    return [
        f"# {inc.id}: {md_escape(inc.title)}",
        "",
        f"_Postmortem draft exported by {md_escape(doc.generator)} at {doc.generated_at} "
        f"(schema {doc.schema_}). Review every section before sharing._",
        "",
        *[f"- **{name}:** {value}" for name, value in facts],
    ]


def _md_summary(doc: ExportDocument) -> list[str]:
    out = [md_escape(doc.summary)]
    if doc.links:
        out += ["", "### Links", "", *[_link_line(link) for link in doc.links]]
    return out


def _md_impact(doc: ExportDocument) -> list[str]:
    imp = doc.impact
    how = imp.measured_by
    measured = how is not None and how.error is None
    sli = md_code(imp.sli) if imp.sli else "not known"
    objective = f", objective {md_code(imp.objective)}" if imp.objective else ""
    first = (
        f"{value_text(imp.first_breach_value)} at {imp.first_breach_at}"
        if imp.first_breach_at
        else "not recorded"
    )
    worst = f"{value_text(imp.worst_value)} at {imp.worst_at}" if imp.worst_at else "not recorded"
    if how is not None and measured:
        if imp.breach_seconds is not None:
            breach = (
                f"{seconds_text(imp.breach_seconds)} ({how.breached_from} → {how.breached_until})"
            )
        elif how.breached_from:
            breach = f"not over: breached from {how.breached_from} to the window's end"
        else:
            breach = "none: the SLI stayed within its objective over the window"
    elif imp.breach_seconds is not None:
        breach = f"{seconds_text(imp.breach_seconds)} ({imp.first_breach_at} → {imp.recovered_at})"
    elif imp.first_breach_at:
        breach = "not known: no recovery of the SLI was recorded"
    else:
        breach = "not known: no breach of the SLI was recorded"
    if how is None:
        source = "the SLI snapshots on the timeline (no range query was made)"
    else:
        window = f"{how.start} → {how.end}{' (still firing)' if how.ongoing else ''}"
        source = (
            f"a range query of the SLI's own PromQL {md_code(how.query)} over {window}, "
            f"step {seconds_text(how.step_seconds)}"
        )
        if how.error is not None:
            source = (
                f"the SLI snapshots on the timeline: {source} could not be read "
                f"({md_escape(how.error)})"
            )
    return [
        f"- **Model:** {md_code(imp.model)}",
        f"- **SLI:** {sli}{objective}",
        f"- **First breach:** {first}",
        f"- **Worst value seen:** {worst}",
        f"- **Breach duration:** {breach}",
        f"- **Measured by:** {source}",
        f"- **Alerts fired:** {imp.alerts_fired}",
    ]


def _md_detection(doc: ExportDocument) -> list[str]:
    det = doc.detection
    mttd = doc.metrics.get("mttd")
    out = [
        f"- **SLI first breached (Prometheus):** {det.first_breach_at or 'not recorded'}",
        f"- **Alert started firing:** {det.alert_started_at}",
        f"- **Incident opened:** {det.opened_at}",
        f"- **Time to detect (MTTD):** {seconds_text(mttd.seconds if mttd else None)}"
        + (f" ({mttd.seconds:g} s)" if mttd and mttd.seconds is not None else ""),
    ]
    out += [f"- **SLI query:** {md_code(query)}" for query in det.queries]
    if doc.promql:
        out += ["", "### PromQL", "", "Every query the incident's evidence used, in order:"]
        for query in doc.promql:
            out += ["", *code_block(query, "promql")]
    return out


def _md_timeline(doc: ExportDocument) -> list[str]:
    if not doc.timeline:
        return ["_No events were recorded._"]
    esc = md_escape
    names: dict[str, str] = {}  # kinds and actors repeat: escape each once

    def name(text: str) -> str:
        shown = names.get(text)
        if shown is None:
            shown = names[text] = esc(text)
        return shown

    return [
        f"- {e['at']} · {name(e['kind'])} · {name(e['actor'])} · {esc(e['summary'])}"
        for e in doc.timeline
    ]


def _md_triage(doc: ExportDocument) -> list[str]:
    if not doc.triage:
        return ["_No runbook walk was recorded for this incident._"]
    out: list[str] = []
    for run in doc.triage:
        version = f", version {md_escape(run['runbook_version'])}" if run["runbook_version"] else ""
        runbook = md_code(run["runbook"]) if run["runbook"] else "(unknown runbook)"
        out += [f"### Runbook {runbook} (walk {md_code(run['run'])}{version})", ""]
        for index, step in enumerate(run["path"], 1):
            kind = f" ({md_escape(step['kind'])})" if step["kind"] else ""
            decision = f" → **{md_escape(step['decision'])}**" if step["decision"] else ""
            when = f"{step['at']} ({offset_text(step['read_after_firing'])} firing)"
            line = f"{index}. {when} · {md_code(step['step'])}{kind}{decision}"
            if step["recheck"]:
                line += " _(read again)_"
            if step["superseded"]:
                line += " _(earlier reading)_"
            if step["evidence"]:
                line += f": {md_escape(step['evidence'])}"
            out.append(line)
            if step["query"]:
                out.append(f"   - PromQL: {md_code(step['query'])}")
        if not run["path"]:
            out.append("_No steps recorded._")
        if run["cause"]:
            summary = f": {md_escape(run['summary'])}" if run["summary"] else ""
            out += ["", f"**Concluded:** cause **{md_escape(run['cause'])}**{summary}"]
        else:
            out += ["", "**Not concluded.**"]
        out.append("")
    out.pop()
    return out


def _md_mitigation(doc: ExportDocument) -> list[str]:
    out: list[str] = []
    if not doc.mitigation:
        out.append("_No mitigation was recorded._")
    for m in doc.mitigation:
        changes = "; ".join(
            f"{md_code(c['target'])}: {md_code(c['before'])} → {md_code(c['after'])}"
            for c in m["changes"]
        )
        what = changes or md_escape(m["summary"]) or "no plan recorded"
        outcome = md_escape(m["outcome"])
        if m["error"]:
            outcome += f" ({md_escape(m['error'])})"
        out.append(
            f"- {m['requested_at']} · **{md_escape(m['action'])}** by {md_escape(m['actor'])}: "
            f"{what} · {outcome}"
        )
        check = m["verification"]
        if check is not None:
            out.append(f"  - {verification_line(check)}")
        audit = ", ".join(
            f"{md_escape(a['kind'])} #{a['seq'] if a['seq'] is not None else '?'}"
            + (f" {md_code(a['hash'][:12])}" if a["hash"] else "")
            for a in m["audit"]
        )
        if audit:
            out.append(f"  - Audit: {audit}")
        out.extend(f"  - Note: {md_escape(note)}" for note in m["notes"])
    versions = doc.versions
    if versions is not None:
        model = md_code(versions.model) if versions.model else "the model"
        alias = f" (alias {md_code(versions.alias)})" if versions.alias else ""
        state = "" if versions.applied else " — planned, but no rollback took effect"
        before = md_code(versions.before) if versions.before else "not known"
        after = md_code(versions.after) if versions.after else "not known"
        out += ["", f"**Model version:** {model}{alias}: {before} → {after}{state}"]
    return out


def _md_root_cause(doc: ExportDocument) -> list[str]:
    root = doc.root_cause
    if root is None:
        return ["_Not classified: no runbook walk concluded with a cause._"]
    source = f"runbook {md_code(root.runbook)}" if root.runbook else "a runbook walk"
    walk = f", walk {md_code(root.run)}" if root.run else ""
    out = [f"**Cause:** {md_escape(root.cause)} (from {source}{walk}, at {root.at})"]
    if root.summary:
        out += ["", md_escape(root.summary)]
    return out


def _md_metrics(doc: ExportDocument) -> list[str]:
    out = ["| Metric | Time | Seconds | From → to | Definition |", "|---|---|---|---|---|"]
    for metric in doc.metrics.values():
        span = (
            f"{md_escape(metric.start or '?')} → {md_escape(metric.end or '?')}"
            if metric.start or metric.end
            else ""
        )
        seconds = "" if metric.seconds is None else f"{metric.seconds:g}"
        out.append(
            f"| {md_escape(metric.label)} | {seconds_text(metric.seconds)} | {seconds} "
            f"| {span} | {md_escape(metric.definition)} |"
        )
    return out


def _md_action_items(doc: ExportDocument) -> list[str]:
    out = ["_Draft: review each item, then give it an owner and a due date._", ""]
    out += [f"- [ ] {md_escape(item)}" for item in doc.action_items]
    return out


_MD_SECTIONS: tuple[Callable[[ExportDocument], list[str]], ...] = (
    _md_summary,
    _md_impact,
    _md_detection,
    _md_timeline,
    _md_triage,
    _md_mitigation,
    _md_root_cause,
    _md_metrics,
    _md_action_items,
)


def to_markdown(doc: ExportDocument) -> str:
    """The document as a postmortem draft: a title, then the :data:`SECTIONS`."""
    lines = _md_header(doc)
    for title, section in zip(SECTIONS, _MD_SECTIONS, strict=True):
        lines += ["", f"## {title}", ""]
        lines += section(doc)
    return "\n".join(lines) + "\n"
