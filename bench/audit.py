"""`mlconsole audit verify` on a long log against a raw SELECT + SHA-256 loop.

Builds an audit log of ``--entries`` entries (default 1,000,000) in a temporary
directory: the rows are written straight into SQLite, each hashed with the log's own
``canonical`` and ``chain_hash``, and the head file is written as an append would.
Then, in fresh interpreters, interleaved, ``--runs`` times each:

* ours: ``mlconsole audit verify --db LOG`` (exit 0: the chain holds);
* raw: the same rows read with one ``SELECT`` and each hashed with SHA-256, nothing
  else: no checks, no messages.

It prints the medians of wall time, CPU time and peak RSS (each child's
``ru_maxrss``), and the ratios; only the ratios and the peak memory are meant to
travel.

    python bench/audit.py [--entries 1000000] [--runs 3] [--db PATH]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from console.audit.chain import GENESIS, canonical, chain_hash
from console.audit.log import AuditLog

ROOT = Path(__file__).resolve().parent.parent

RAW = """
import hashlib, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for seq, body, prev_hash, digest in db.execute(
    "SELECT seq, body, prev_hash, hash FROM audit ORDER BY seq"
):
    hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
"""

# What the `mlconsole` script runs (console.cli.main:main), for when it is not installed.
MLCONSOLE = ["-c", "import sys; from console.cli.main import main; sys.exit(main())"]

MODELS = ("fraud-detector", "churn-predictor", "recommender", "ranker", "pricing")


def synthetic_rows(entries: int, start: float = 1_790_000_000.0) -> Iterator[tuple[Any, ...]]:
    """``entries`` chained rows (seq, body, prev_hash, hash) like the console writes:
    an intent and its result, in turn, for a rollback of one of a few models."""
    prev = GENESIS
    for seq in range(1, entries + 1):
        intent = seq % 2 == 1
        moment = start + seq
        body = {
            "kind": "intent" if intent else "result",
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)),
            "ts": moment,
            "actor": "ann@oncall",
            "incident": f"INC-{seq // 20 + 1}",
            "action": "rollback",
            "params": {"model": MODELS[seq % len(MODELS)], "to": str(seq % 9 + 1)},
            "plan": {
                "summary": f"roll {MODELS[seq % len(MODELS)]} back to v{seq % 9 + 1}",
                "before": str(seq % 9 + 2),
                "after": str(seq % 9 + 1),
            },
            "result": None if intent else {"applied": True, "read_back": str(seq % 9 + 1)},
            "error": None,
            "intent_seq": None if intent else seq - 1,
        }
        body_json = canonical(body)
        digest = chain_hash(prev, body_json)
        yield seq, body_json, prev, digest
        prev = digest


def synthetic_log(path: Path, entries: int) -> Path:
    """An audit log of ``entries`` entries at ``path``, whole: it verifies."""
    log = AuditLog(path)  # the schema and the file, as the console creates them
    log.close()
    last = (0, GENESIS)
    db = sqlite3.connect(path)
    try:
        with db:

            def rows() -> Iterator[tuple[Any, ...]]:
                nonlocal last
                for row in synthetic_rows(entries):
                    last = (row[0], row[3])
                    yield row

            db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?)", rows())
    finally:
        db.close()
    log = AuditLog(path)
    try:
        log._write_head(*last)  # as the last append would have left it
    finally:
        log.close()
    return path


def run(argv: Sequence[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child, start to exit."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage, not the sum
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}: {out.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--db",
        type=Path,
        help="keep the log here and use it again on the next run (default: a temp dir)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "audit.db"
        if not path.exists():
            started = time.perf_counter()
            synthetic_log(path, args.entries)
            print(
                f"built {args.entries:,} entries in {time.perf_counter() - started:.1f}s "
                f"({path.stat().st_size / 2**20:.0f} MiB)",
                file=sys.stderr,
            )
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            args.entries = db.execute("SELECT count(*) FROM audit").fetchone()[0]
        script = Path(sys.executable).with_name("mlconsole")
        ours_argv = (
            [sys.executable, str(script)] if script.exists() else [sys.executable, *MLCONSOLE]
        )
        ours_argv += ["audit", "verify", "--db", str(path)]
        raw_argv = [sys.executable, "-c", RAW, str(path)]
        samples: dict[str, list[tuple[float, float, float]]] = {"ours": [], "raw": []}
        for number in range(args.runs):
            print(f"round {number + 1}/{args.runs}", file=sys.stderr)
            samples["raw"].append(run(raw_argv))
            samples["ours"].append(run(ours_argv))
    report(samples, args.entries, args.runs)


def report(samples: dict[str, list[tuple[float, float, float]]], entries: int, runs: int) -> None:
    def median(which: str, index: int) -> float:
        return statistics.median(s[index] for s in samples[which])

    print(f"audit verify, {entries:,} entries: medians of {runs} interleaved runs")
    for index, what, unit, scale in ((0, "wall", "ms", 1000), (1, "cpu ", "ms", 1000)):
        ours, raw = median("ours", index), median("raw", index)
        print(
            f"  {what}: verify {ours * scale:8.0f} {unit} vs raw SELECT + SHA-256 "
            f"{raw * scale:8.0f} {unit}  ratio {ours / raw:.2f}x  (target <= 1.3x)"
        )
    ours, raw = median("ours", 2), median("raw", 2)
    print(f"  peak RSS: verify {ours:.0f} MiB vs raw {raw:.0f} MiB  (target: verify under 100 MiB)")


if __name__ == "__main__":
    main()
