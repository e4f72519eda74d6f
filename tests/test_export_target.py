"""``export -o`` and the ``e`` key write only to a regular file or a new path."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from console.export.files import ExportTargetError, check_export_target
from tests.test_incident_cli import config, run, seeded, store  # noqa: F401 - fixtures


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the same device as /dev/null


def _directory(path: Path) -> None:
    path.mkdir()


def _link_to_file(path: Path) -> None:
    target = path.with_name("real.md")
    target.write_text("someone else's file\n")
    path.symlink_to(target)


def _dangling_link(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere.md"))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_device, "a character device"),
        (_fifo, "a FIFO"),
        (_directory, "a directory"),
        (_link_to_file, "a symbolic link"),
        (_dangling_link, "a symbolic link"),
    ],
)
def test_export_refuses_anything_but_a_regular_file(
    make: Callable[[Path], None],
    kind: str,
    config: Path,  # noqa: F811
    seeded: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "out.md"
    make(target)
    before = os.lstat(target)

    assert run(config, "export", "INC-1", "-o", str(target)) == 2

    err = capsys.readouterr().err
    assert f"mlconsole export: refused: {target} is {kind}" in err
    assert "regular file or a new path" in err
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if kind == "a symbolic link" and target.exists():
        assert target.resolve().read_text() == "someone else's file\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_writes_a_regular_file_and_a_new_path(
    config: Path,  # noqa: F811
    seeded: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    existing = tmp_path / "old.md"
    existing.write_text("old draft")
    assert run(config, "export", "INC-1", "-o", str(existing)) == 0
    assert existing.read_text().startswith("# INC-1")
    new = tmp_path / "new" / "INC-1.json"
    assert run(config, "export", "INC-1", "-o", str(new)) == 0
    assert new.is_file() and not new.is_symlink()
    check_export_target(new)


def test_the_e_key_path_refuses_a_planted_link(
    config: Path,  # noqa: F811
    seeded: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The TUI's ``e`` writes INC-N.md and INC-N.json through export_files: a link
    planted at either name (dangling, so it does not even look like an existing
    draft) is refused, never replaced."""
    from console.config.loader import load_config
    from console.export.build import export_files
    from console.session import open_reading

    out = tmp_path / "exports"
    out.mkdir()
    planted = out / "INC-1.md"
    planted.symlink_to(tmp_path / "victim.md")
    records = open_reading(load_config(config))
    try:
        incident = records.book.find("INC-1")
        with pytest.raises(ExportTargetError, match=r"INC-1\.md is a symbolic link"):
            export_files(records, incident, out)
    finally:
        records.close_stores()
    assert planted.is_symlink() and not (tmp_path / "victim.md").exists()


def test_one_description_of_what_a_path_is(tmp_path: Path) -> None:
    """The export, the config loader and the SQLite files name a path's kind alike."""
    import os

    from console.file_kind import not_regular

    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    os.mkfifo(tmp_path / "fifo")
    assert not_regular(os.lstat(tmp_path / "file").st_mode) is None
    assert not_regular(os.lstat(tmp_path / "link").st_mode) == "a symbolic link"
    assert not_regular(os.lstat(tmp_path / "fifo").st_mode) == "a FIFO (named pipe)"
    assert not_regular(os.stat(tmp_path / "link").st_mode) is None  # followed: a file
