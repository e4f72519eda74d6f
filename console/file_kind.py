"""What kind of file a path names, for refusing anything but a regular file.

A FIFO blocks whoever reads it until a writer comes, and a device such as
``/dev/zero`` never ends, so the config, runbook and SQLite files are checked
with :func:`not_regular` before they are opened.
"""

from __future__ import annotations

import stat

_FILE_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),  # an lstat() mode (an export never replaces one)
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_regular(mode: int) -> str | None:
    """``None`` for a regular file's ``st_mode``, else what it is ("a FIFO (named pipe)")."""
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")
