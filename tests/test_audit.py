"""The audit log: hash chain, durability and every kind of tampering."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from console.audit.chain import AuditError, canonical, chain_hash
from console.audit.log import AuditLog


def filled(tmp_path: Path, n: int = 4) -> AuditLog:
    log = AuditLog(tmp_path / "audit.db")
    for i in range(n):
        kind = "intent" if i % 2 == 0 else "result"
        log.append(
            kind,
            actor="ann@host",
            action="rollback",
            incident="inc-1",
            params={"model": "fraud-detector", "to": "6"},
            plan={"before": "7", "after": "6"},
            result={"ok": True} if kind == "result" else None,
            intent_seq=i if kind == "result" else None,
        )
    return log


def raw(log: AuditLog) -> sqlite3.Connection:
    return sqlite3.connect(log.path, isolation_level=None)


def test_chain_verifies_and_each_hash_covers_the_previous(tmp_path: Path) -> None:
    log = filled(tmp_path)
    assert log.verify().ok and log.verify().entries == 4
    entries = log.entries()
    assert entries[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
        assert after.hash == chain_hash(before.hash, canonical(after.body))
    assert entries[0].body["at"].endswith("Z") and entries[0].body["actor"] == "ann@host"


def test_editing_an_entry_is_named(tmp_path: Path) -> None:
    log = filled(tmp_path)
    body = json.loads(
        log.entries()[1].body
        and raw(log).execute("SELECT body FROM audit WHERE seq = 2").fetchone()[0]
    )
    body["params"]["to"] = "5"
    raw(log).execute("UPDATE audit SET body = ? WHERE seq = 2", (canonical(body),))
    result = log.verify()
    assert not result.ok and result.bad_seq == 2 and "changed" in result.reason


def test_deleting_an_entry_is_named(tmp_path: Path) -> None:
    log = filled(tmp_path)
    raw(log).execute("DELETE FROM audit WHERE seq = 2")
    result = log.verify()
    assert not result.ok and result.bad_seq == 3


def test_reordering_entries_is_named(tmp_path: Path) -> None:
    log = filled(tmp_path)
    db = raw(log)
    db.execute("UPDATE audit SET seq = 100 WHERE seq = 2")
    db.execute("UPDATE audit SET seq = 2 WHERE seq = 3")
    db.execute("UPDATE audit SET seq = 3 WHERE seq = 100")
    result = log.verify()
    assert not result.ok and result.bad_seq == 2


def test_truncating_the_tail_is_named(tmp_path: Path) -> None:
    log = filled(tmp_path)
    raw(log).execute("DELETE FROM audit WHERE seq >= 3")
    result = log.verify()
    assert not result.ok and result.bad_seq == 3 and "truncated" in result.reason


def test_rewriting_the_whole_chain_is_caught_by_the_head(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    db = raw(log)
    body = json.loads(db.execute("SELECT body FROM audit WHERE seq = 2").fetchone()[0])
    body["actor"] = "mallory@host"
    text = canonical(body)
    prev = db.execute("SELECT hash FROM audit WHERE seq = 1").fetchone()[0]
    db.execute("UPDATE audit SET body = ?, hash = ? WHERE seq = 2", (text, chain_hash(prev, text)))
    result = log.verify()
    assert not result.ok and result.bad_seq == 2


def test_intent_without_result_is_in_doubt(tmp_path: Path) -> None:
    log = filled(tmp_path, 3)  # intent 1, its result 2, intent 3 with no result
    doubt = log.in_doubt()
    assert [e.seq for e in doubt] == [3]


def test_unwritable_log_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "dir")  # a directory is not a database
    log = filled(tmp_path, 1)
    raw(log).execute("DROP TABLE audit")
    with pytest.raises(AuditError, match="cannot write"):
        log.append("intent", actor="a", action="rollback", params={})


def test_a_head_that_lags_behind_the_table_is_reported(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    head = log.head_path.read_text()
    log.append("intent", actor="a", action="rollback", params={})
    log.head_path.write_text(head)  # entry 3 now stands past the head it should match
    result = log.verify()
    assert not result.ok and result.bad_seq == 3
    assert "records entry 2, but the log holds 3" in result.reason


def test_an_append_over_a_truncated_tail_is_refused(tmp_path: Path) -> None:
    log = filled(tmp_path, 4)
    raw(log).execute("DELETE FROM audit WHERE seq >= 3")
    with pytest.raises(AuditError, match="entries 3 to 4 are missing") as refused:
        log.append("intent", actor="a", action="pipeline", params={"model": "m"})
    assert "nothing may run" in str(refused.value)
    assert [e.seq for e in log.entries()] == [1, 2]  # nothing appended over the gap
    result = log.verify()
    assert not result.ok and result.bad_seq == 3 and "truncated" in result.reason


def test_an_append_without_its_head_file_is_refused(tmp_path: Path) -> None:
    log = filled(tmp_path, 2)
    log.head_path.unlink()
    with pytest.raises(AuditError, match=r"head file .* is missing"):
        log.append("intent", actor="a", action="pipeline", params={})
    assert len(log.entries()) == 2


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_verify_never_modifies_the_log_it_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli.main import main

    log = filled(tmp_path, 3)
    db = raw(log)
    db.execute("DROP TABLE audit")  # tampered: opening it as a writer would re-create it
    db.close()
    log.close()
    before = _files(tmp_path)
    assert main(["audit", "verify", "--db", str(log.path)]) == 2
    assert "no such table: audit" in capsys.readouterr().err
    assert _files(tmp_path) == before  # no table created, no -wal or -shm beside it


def test_verify_checks_a_read_only_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from console.cli.main import main

    log = filled(tmp_path, 3)
    log.close()
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for name in ("audit.db", "audit.db.head"):
        shutil.copy(tmp_path / name, copy_dir / name)
        (copy_dir / name).chmod(0o444)
    copy_dir.chmod(0o555)
    before = _files(copy_dir)
    try:
        assert main(["audit", "verify", "--db", str(copy_dir / "audit.db")]) == 0
        assert "OK (3 entries, chain intact)" in capsys.readouterr().out
        assert main(["audit", "list", "--db", str(copy_dir / "audit.db")]) == 0
        assert _files(copy_dir) == before  # nothing written, even where root could
    finally:
        copy_dir.chmod(0o755)


def test_audit_cli_verify_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli.main import main

    log = filled(tmp_path, 3)
    db = str(log.path)
    assert main(["audit", "verify", "--db", db]) == 0
    assert "OK (3 entries" in capsys.readouterr().out
    assert main(["audit", "list", "--db", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["in_doubt"] for e in listed] == [False, False, True]
    raw(log).execute("DELETE FROM audit WHERE seq = 2")
    assert main(["audit", "verify", "--db", db]) == 1
    assert "TAMPERED at entry 3" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", str(tmp_path / "none.db")]) == 2


@pytest.mark.parametrize("where", ["log", "head"])
def test_verify_refuses_a_fifo_instead_of_waiting_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """A FIFO named as the log (or put where its head file is) would block the read
    until some writer came: verify says what it is and exits at once."""
    import os

    from console.cli.main import main

    log = filled(tmp_path, 2)
    log.close()
    if where == "log":
        db = tmp_path / "pipe.db"
        os.mkfifo(db)
        assert main(["audit", "verify", "--db", str(db)]) == 2
        assert main(["audit", "list", "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert f"{db} is a FIFO (named pipe), not a regular file" in err
        with pytest.raises(AuditError, match="is a FIFO"):
            AuditLog(db)  # the writer's open refuses it too
    else:
        log.head_path.unlink()
        os.mkfifo(log.head_path)
        assert main(["audit", "verify", "--db", str(log.path)]) == 1
        assert "TAMPERED" in capsys.readouterr().out


def test_verify_names_a_device_for_what_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli.main import main

    assert main(["audit", "verify", "--db", "/dev/zero"]) == 2
    assert "/dev/zero is a character device, not a regular file" in capsys.readouterr().err


# -- a long log -----------------------------------------------------------------------

LONG = 20_000


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole log of LONG entries, written straight into SQLite (as bench/audit.py
    builds its million), with the log's own hashing."""
    from bench.audit import synthetic_log

    return synthetic_log(tmp_path_factory.mktemp("long") / "audit.db", LONG)


def copy_of(log: Path, tmp_path: Path) -> AuditLog:
    for suffix in ("", ".head"):
        (tmp_path / f"audit.db{suffix}").write_bytes(Path(f"{log}{suffix}").read_bytes())
    return AuditLog(tmp_path / "audit.db")


def verify_peak(log: AuditLog) -> int:
    """The most Python memory verify held at once, in bytes."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert log.verify().ok
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_verify_memory_does_not_grow_with_the_log(long_log: Path, tmp_path: Path) -> None:
    """verify streams the rows: ten times the entries, the same memory (it read them
    all at once before, 1 GB at a million entries)."""
    from bench.audit import synthetic_log

    short = AuditLog(synthetic_log(tmp_path / "short.db", LONG // 10), read_only=True)
    long = AuditLog(long_log, read_only=True)
    short_peak, long_peak = verify_peak(short), verify_peak(long)
    assert long.verify().entries == LONG and short.verify().entries == LONG // 10
    assert long_peak < max(2 * short_peak, short_peak + 256 * 1024), (short_peak, long_peak)


def test_a_change_deep_in_a_long_log_is_named(long_log: Path, tmp_path: Path) -> None:
    log = copy_of(long_log, tmp_path)
    db = raw(log)
    body = json.loads(db.execute("SELECT body FROM audit WHERE seq = 15000").fetchone()[0])
    body["actor"] = "mallory@host"
    db.execute("UPDATE audit SET body = ? WHERE seq = 15000", (canonical(body),))
    result = log.verify()
    assert (result.ok, result.entries, result.bad_seq) == (False, LONG, 15000)
    assert result.reason == "entry 15000 was changed after it was written"


def test_a_deletion_deep_in_a_long_log_is_named_by_the_cli(
    long_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.cli.main import main

    log = copy_of(long_log, tmp_path)
    raw(log).execute("DELETE FROM audit WHERE seq = 17000")
    assert main(["audit", "verify", "--db", str(log.path)]) == 1
    assert capsys.readouterr().out == (
        f"{log.path}: TAMPERED at entry 17001: entry 17001 stands where entry 17000 "
        "should: entries were deleted or reordered\n"
    )
    result = log.verify()
    assert (result.entries, result.bad_seq) == (LONG - 1, 17001)


def _listed_at_once(log: AuditLog) -> tuple[str, str]:
    """What `audit list` printed when it read every entry at once: text, then JSON."""
    from console.cli.audit import entry_line

    entries = log.entries()
    doubt = {e.seq for e in log.in_doubt(entries)}
    text = "".join(entry_line(e, in_doubt=e.seq in doubt) + "\n" for e in entries)
    items = [{**e.as_dict(), "in_doubt": e.seq in doubt} for e in entries]
    return text, json.dumps(items, indent=2) + "\n"


def test_audit_list_streams_exactly_what_listing_every_entry_at_once_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Intents closed and in doubt, a body that is not JSON, and an empty log: the
    streamed listing, text and JSON, is byte for byte the listing of old."""
    from console.cli.main import main

    empty = AuditLog(tmp_path / "empty.db")
    assert main(["audit", "list", "--db", str(empty.path), "--json"]) == 0
    assert capsys.readouterr().out == "[]\n" == _listed_at_once(empty)[1]

    log = filled(tmp_path, 5)  # intents 1, 3, 5; results close 1 and 3: 5 is in doubt
    raw(log).execute(
        "INSERT INTO audit (seq, body, prev_hash, hash) VALUES (6, ?, ?, ?)",
        ('{"kind": "result", "intent_seq": 5, "cut', "0" * 64, "f" * 64),  # not JSON
    )
    text, as_json = _listed_at_once(log)
    assert main(["audit", "list", "--db", str(log.path)]) == 0
    assert capsys.readouterr().out == text
    assert main(["audit", "list", "--db", str(log.path), "--json"]) == 0
    assert capsys.readouterr().out == as_json
    assert [e["in_doubt"] for e in json.loads(as_json)] == [False] * 4 + [True, False]


def test_audit_list_holds_a_few_entries_in_memory_however_long_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten times the entries, not ten times the memory: the peak of listing 10,000
    entries (intents, each closed by its result, as a log holds them) stays within
    twice that of 1,000 (it was all of them, parsed, at once)."""
    import os
    import tracemalloc

    from console.cli.main import main

    log = AuditLog(tmp_path / "audit.db")

    def body(seq: int) -> str:  # as append writes them: an intent, then its result
        intent = seq % 2 == 1
        named = None if intent else seq - 1
        kind = "intent" if intent else "result"
        return json.dumps({"kind": kind, "intent_seq": named, "plan": {"note": "x" * 200}})

    def add(first: int, count: int) -> None:
        rows = [(seq, body(seq), "0" * 64, f"{seq:064x}") for seq in range(first, first + count)]
        db = raw(log)
        db.execute("BEGIN")  # one transaction: not a sync of the file per row
        db.executemany("INSERT INTO audit (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        db.close()

    def peak(*flags: str) -> int:
        with open(os.devnull, "w") as sink:
            monkeypatch.setattr("sys.stdout", sink)
            tracemalloc.start()
            try:
                assert main(["audit", "list", "--db", str(log.path), *flags]) == 0
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                monkeypatch.undo()

    add(1, 1_000)
    small = peak("--json")  # the text goes through the same listing, with less to write
    add(1_001, 9_001)  # the last intent is in doubt
    big = peak("--json")
    assert big < 2 * small, (small, big)
    assert [entry.seq for entry, doubt in log.listing() if doubt] == [10_001]


def test_audit_list_shows_one_state_of_a_log_another_console_appends_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intents in doubt and the entries listed come from one read: a result that
    another console appends between the two passes neither shows nor closes its
    intent halfway (the intent marked in doubt above the result that closed it)."""
    log = filled(tmp_path, 5)  # intent 5 is in doubt; the writer keeps the log open
    reader = AuditLog(log.path, read_only=True)
    first_pass = reader._intents_in_doubt

    def then_bob_appends(batch: int) -> set[int]:
        found = first_pass(batch)
        log.append(
            "result",
            actor="bob@host",
            action="rollback",
            params={"model": "fraud-detector", "to": "6"},
            result={"ok": True},
            intent_seq=5,
        )
        return found

    monkeypatch.setattr(reader, "_intents_in_doubt", then_bob_appends)
    assert [(e.seq, doubt) for e, doubt in reader.listing(batch=2)] == [
        (1, False),
        (2, False),
        (3, False),
        (4, False),
        (5, True),
    ]
    monkeypatch.undo()
    # Listed afresh, the result shows, and its intent is closed.
    assert [(e.seq, doubt) for e, doubt in reader.listing()][-2:] == [(5, False), (6, False)]
