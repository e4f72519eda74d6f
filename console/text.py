"""Text from outside, made inert for a terminal, a screen or a one-line cell.

Labels, annotations, notes, registry tags, actor names, runbook text and error
messages come from systems the console does not control. Written to a terminal
as they are, an ``ESC`` starts a control sequence (clear the screen, set the
window title, write the clipboard with OSC 52), a bidi override reorders what
follows, a zero-width character hides a difference, and a newline forges a
line. Read as Rich or Textual markup, ``[red]`` or ``[link=...]`` would style
or link.

:func:`inert` shows every such character as its Python escape instead, so it
is seen and never acted on: ``ESC`` becomes ``\\x1b``, a C1 control such as
CSI ``\\x9b``, ``DEL`` ``\\x7f``, a bidi override ``\\u202e``, a zero-width
space ``\\u200b``, and a newline ``\\n`` (or stays a newline where several
lines are expected). Backslashes are left alone, so a literal ``\\x1b`` in the
text reads the same as an escaped one, and neither does anything.

JSON output keeps the exact text (``json.dumps`` escapes it); everything else
that shows outside text goes through this one function. It runs for every
cell of a 1,000-model dashboard, so a clean string costs one regex search.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

# C0 controls and DEL, C1 controls, the soft hyphen, Arabic letter mark, Mongolian
# vowel separator, zero-width and directional marks, line and paragraph separators,
# bidi embeddings/overrides/isolates, invisible operators, the BOM, interlinear
# annotation controls and Unicode tag characters.
_OTHER_UNSAFE = (
    "\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_UNSAFE}]")
_CRLF = re.compile(r"\r\n")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Rich and Textual read ``\\[`` differently, so a backslash before a ``[`` (or at the
# end, before the caller's own markup) is shown as ``\\x5c``, and every ``[`` escaped.
_MARKUP_BACKSLASH = re.compile(r"\\+(?=\[)|\\+$")


def _visible(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_CACHE: dict[str, str] = {}


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    shown = _CACHE.get(char)
    if shown is None:
        shown = _CACHE[char] = _visible(char)
    return shown


def inert(text: object, *, markup: bool = False, multiline: bool = False) -> str:
    """``text`` with every control, format and bidi character shown as its escape.

    ``markup=True`` also escapes ``[`` so Rich or Textual markup in the text is
    shown, not applied (for a ``Static``, a ``DataTable`` string cell, ``notify``
    or ``Console.print`` of a string). ``multiline=True`` keeps newlines (a
    CR LF or a lone CR becomes one ``\\n``) where the text may span lines.
    Anything not a string is ``str()``-ed first.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if multiline:
        if "\r" in text:
            text = _CRLF.sub("\n", text).replace("\r", "\n")
        if _UNSAFE_BUT_NEWLINE.search(text) is not None:
            text = _UNSAFE_BUT_NEWLINE.sub(_replace, text)
    elif _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(_replace, text)
    if markup and ("[" in text or text.endswith("\\")):
        text = _MARKUP_BACKSLASH.sub(lambda m: "\\x5c" * len(m.group()), text)
        text = text.replace("[", "\\[")
    return text


def print_inert(text: object, file: TextIO | None = None) -> None:
    """Print ``text`` (a line of a command's output that may quote a file or a server)
    made :func:`inert`, on any terminal encoding: what it cannot encode is escaped."""
    stream = sys.stdout if file is None else file
    encoding = getattr(stream, "encoding", None) or "utf-8"
    shown = inert(text).encode(encoding, "backslashreplace").decode(encoding, "replace")
    print(shown, file=stream)
