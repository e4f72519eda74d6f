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
from functools import lru_cache

#: What is never written as it is: C0 controls and DEL, C1 controls, the soft hyphen,
#: Arabic letter mark, Mongolian vowel separator, zero-width and directional marks,
#: line and paragraph separators, bidi embeddings/overrides/isolates, invisible
#: operators, the BOM, interlinear annotation controls and Unicode tag characters.
#: Each is unprintable to ``str.isprintable`` (a test holds this).
UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0xAD, 0xAD),
    (0x061C, 0x061C),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0xE0000, 0xE007F),
)
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


# ``str.translate`` tables: one C-level pass however many characters need escaping,
# so hostile text costs a few times clean text, not a Python call per character.
_TABLE = {
    code: _visible(chr(code)) for first, last in UNSAFE_RANGES for code in range(first, last + 1)
}
_TABLE_BUT_NEWLINE = {code: shown for code, shown in _TABLE.items() if code != 0x0A}


@lru_cache(maxsize=16384)
def _escaped(text: str, multiline: bool) -> str:
    # Cached: the same alert text is drawn again at every refresh, and translating
    # into multi-character escapes costs about 0.15 µs a character.
    if multiline:
        if "\r" in text:
            text = _CRLF.sub("\n", text).replace("\r", "\n")
        return text.translate(_TABLE_BUT_NEWLINE)
    return text.translate(_TABLE)


#: Most characters of outside text a one-line cell shows (a summary column, a status
#: line): an annotation of 200 KB would otherwise make one row as wide as a book.
CELL_LIMIT = 500


def inert(
    text: object, *, markup: bool = False, multiline: bool = False, limit: int | None = None
) -> str:
    """``text`` with every control, format and bidi character shown as its escape.

    ``markup=True`` also escapes ``[`` so Rich or Textual markup in the text is
    shown, not applied (for a ``Static``, a ``DataTable`` string cell, ``notify``
    or ``Console.print`` of a string). ``multiline=True`` keeps newlines (a
    CR LF or a lone CR becomes one ``\\n``) where the text may span lines.
    Anything not a string is ``str()``-ed first. ``limit`` cuts longer text to that
    many characters and says how many more there were.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… (+{len(text) - limit:,} characters)"
    # Every character the tables escape is unprintable to str.isprintable (a C loop),
    # so printable text, nearly all of it, skips them.
    if not text.isprintable():
        text = _escaped(text, multiline)
    if markup and ("[" in text or text.endswith("\\")):
        text = _MARKUP_BACKSLASH.sub(lambda m: "\\x5c" * len(m.group()), text)
        text = text.replace("[", "\\[")
    return text
