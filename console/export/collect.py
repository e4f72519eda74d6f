"""The events an export needs, sorted once into what each section reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from console.export.schema import TimelineEntry
from console.incidents.timeline import Event, utc

# -- building the document ------------------------------------------------------------


class Collected:
    """What one pass over the events gathers for the sections."""

    def __init__(self) -> None:
        self.timeline: list[TimelineEntry] = []
        self.sli: list[Event] = []
        self.steps: list[Event] = []
        self.actions: list[Event] = []
        self.mitigated: list[Event] = []
        self.notes: list[Event] = []
        self.fired: list[Event] = []
        self.concluded: list[Event] = []
        self.impact: list[Event] = []
        self.promql: dict[str, None] = {}
        self._at: dict[float, str] = {}

    def at(self, event: Event) -> str:
        """The event's time as UTC text, as its timeline entry has it."""
        text = self._at.get(event.at)
        if text is None:
            text = self._at[event.at] = utc(event.at)
        return text


_SLI_KINDS = frozenset({"sli.first_breach", "sli.mitigation", "sli.recovery"})
_ACTION_KINDS = frozenset(
    {"action.intent", "action.result", "action.refusal", "action.verify", "action.reconcile"}
)


def collect_events(events: Sequence[Event]) -> Collected:
    out = Collected()
    append = out.timeline.append
    promql = out.promql
    times = out._at
    for event in events:
        data = event.data
        if type(data) is not dict:
            if isinstance(data, Mapping):
                data = {str(k): v for k, v in data.items()}
            else:
                data = {} if data is None else {"value": data}
        kind, actor, summary, ref = event.kind, event.actor, event.summary, event.ref
        at = float(event.at)
        text = times[at] = utc(at)
        append(
            {
                "at": text,
                "ts": at,
                "kind": kind if type(kind) is str else str(kind),
                "actor": actor if type(actor) is str else str(actor),
                "summary": summary if type(summary) is str else str(summary),
                "data": data,
                "ref": ref if type(ref) is str else str(ref),
            }
        )
        if kind == "runbook.step":
            out.steps.append(event)
            inputs = data.get("inputs")
            if (type(inputs) is dict or isinstance(inputs, Mapping)) and isinstance(
                query := inputs.get("query"), str
            ):
                promql[query] = None
        elif kind in _SLI_KINDS:
            out.sli.append(event)
            if isinstance(query := data.get("query"), str):
                promql[query] = None
        elif kind == "sli.impact":
            out.impact.append(event)
            if isinstance(query := data.get("query"), str):
                promql[query] = None
        elif kind in _ACTION_KINDS:
            out.actions.append(event)
            result = data.get("result")
            if (
                kind == "action.verify"
                and (type(result) is dict or isinstance(result, Mapping))
                and isinstance(query := result.get("query"), str)
            ):
                promql[query] = None
        elif kind == "alert.firing":
            out.fired.append(event)
        elif kind == "note":
            out.notes.append(event)
        elif kind == "runbook.concluded":
            out.concluded.append(event)
        elif kind == "incident.mitigated":
            out.mitigated.append(event)
    promql.pop("", None)
    return out
