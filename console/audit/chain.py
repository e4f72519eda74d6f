"""The audit chain: each entry's hash is ``sha256(previous hash + canonical JSON of the
entry)``, so editing, deleting, reordering or truncating entries breaks the chain at
the first entry touched. Entries, hashing, and walking a chain to verify it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from console.times import utc

GENESIS = "0" * 64


#: How entries write their UTC time (``at``).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
KINDS = ("intent", "result", "refusal", "reconcile", "verify")


class AuditError(Exception):
    """The audit log cannot be written or read: nothing may run unaudited."""


def canonical(body: Mapping[str, Any]) -> str:
    """The one JSON text of an entry that its hash covers: sorted keys, no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain_hash(prev_hash: str, body_json: str) -> str:
    return hashlib.sha256((prev_hash + body_json).encode("utf-8")).hexdigest()


def span_text(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first} to {last} are"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    body: Mapping[str, Any]
    prev_hash: str
    hash: str

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    def as_dict(self) -> dict[str, Any]:
        """The entry as ``audit list --json`` prints it: its time as ISO 8601 UTC
        with milliseconds, like every JSON output (the body keeps Unix seconds in
        ``ts`` too, which its hash covers; ``audit verify`` checks that)."""
        body = dict(self.body)
        ts = body.pop("ts", None)
        if isinstance(ts, int | float) and not isinstance(ts, bool):
            body["at"] = utc(ts)
        return {"seq": self.seq, **body, "prev_hash": self.prev_hash, "hash": self.hash}

    def summary(self) -> str:
        """What the entry says, without its seq, time and kind: the plan's summary,
        the outcome, who (``audit list`` and the incident timeline show it)."""
        body = self.body
        plan = body.get("plan") or {}
        what = plan.get("summary") or " ".join(
            f"{k}={v}" for k, v in (body.get("params") or {}).items()
        )
        result = body.get("result") or {}
        outcome = ""
        if body.get("kind") == "result" and result.get("conflict"):
            outcome = " — applied, but CONFLICT: another writer changed it"
        elif body.get("kind") == "result":
            outcome = " — applied" if result.get("applied") else " — NOT applied"
        elif body.get("kind") == "verify":
            outcome = _verdict(result)
        elif body.get("kind") == "reconcile":
            outcome = f" — {result.get('verdict', '?')}"
        error = f" error: {body['error']}" if body.get("error") else ""
        return (
            f"{body.get('action', '')}: {what}{outcome} (by {body.get('actor', '')})"
            f"{' #' + str(body['intent_seq']) if body.get('intent_seq') else ''}{error}"
        )


def _verdict(result: Mapping[str, Any]) -> str:
    """A verification's outcome, naming the SLI it watched (or that nothing was)."""
    if result.get("watched") is False:
        return " — NOT verified: nothing was watched"
    sli = f" on {result['sli']}" if result.get("sli") else ""
    return (" — recovered" if result.get("recovered") else " — NOT recovered") + sli


def entry_from_row(seq: int, body: str, prev: str, digest: str) -> AuditEntry:
    """A row as an entry; a body that is not JSON is kept as it is, to be shown."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {"kind": "?", "unreadable": body}
    return AuditEntry(seq, parsed, prev, digest)


def doubtful_seqs(entries: Iterable[AuditEntry]) -> set[int]:
    """The seqs of the intents no other entry names as its ``intent_seq`` (no result,
    refusal or reconciliation), in one pass: an intent is kept until an entry closes
    it (a result follows its intent closely, so few are kept at once), and a seq
    named before its intent appears is kept aside."""
    open_now: set[int] = set()
    named_early: set[object] = set()
    for entry in entries:
        if entry.kind == "intent":
            if entry.seq not in named_early:
                open_now.add(entry.seq)
            continue
        named = entry.body.get("intent_seq")
        if named is None or not isinstance(named, int | float | str):
            continue
        if named in open_now:
            open_now.discard(named)
        else:
            named_early.add(named)
    return open_now


def walk_chain(
    rows: Iterable[tuple[int, str, str, str]],
) -> tuple[int, str, tuple[int, str] | None]:
    """Check rows in chain order, one at a time: how many held, the last hash, and
    the first entry that does not hold with why (None when all of them hold)."""
    prev = GENESIS
    index = 0
    for index, (seq, body, prev_hash, digest) in enumerate(rows, start=1):
        if seq != index:
            return (
                index,
                prev,
                (
                    seq,
                    f"entry {seq} stands where entry {index} should: "
                    "entries were deleted or reordered",
                ),
            )
        if prev_hash != prev:
            return index, prev, (seq, f"entry {seq} does not follow the entry before it")
        if chain_hash(prev_hash, body) != digest:
            return index, prev, (seq, f"entry {seq} was changed after it was written")
        prev = digest
    return index, prev, None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    bad_seq: int | None = None
    reason: str = ""
