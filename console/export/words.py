"""How an export words its values: durations, offsets and verdicts in prose, and text
from outside escaped for Markdown."""

from __future__ import annotations

import re

from console.config.models import format_duration
from console.export.schema import Verification
from console.text import inert


def shortened(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _recovery_text(recovered: bool | None, yes: str, no: str, unknown: str) -> str:
    return unknown if recovered is None else (yes if recovered else no)


def verdict_clause(check: Verification | None) -> str:
    """The summary's words on a mitigation's verdict, naming the SLI it watched."""
    if check is None:
        return ""
    if check["watched"] is False:
        return "; its effect could not be verified (nothing was watched)"
    sli = check["sli"] or "the SLI"
    return _recovery_text(check["recovered"], f"; {sli} recovered", f"; {sli} did not recover", "")


def verification_line(check: Verification) -> str:
    """A verdict as the Markdown shows it: always with the SLI it watched, and why."""
    sli = md_code(check["sli"]) if check["sli"] else "an unnamed SLI"
    origin = f" ({md_escape(check['origin'])})" if check["origin"] else ""
    error = f": {md_escape(check['error'])}" if check["error"] else ""
    if check["watched"] is False:
        return f"Not verified: nothing was watched{error}"
    verdict = _recovery_text(check["recovered"], "recovered", "not recovered", "unknown")
    reading = ""
    if check["elapsed"] is not None:
        value = "no data" if check["value"] is None else value_text(check["value"])
        reading = f": {value} after {seconds_text(check['elapsed'])}"
    return f"Verified on {sli}{origin}: {verdict}{reading}" + (
        f"; {md_escape(check['error'])}" if check["error"] else ""
    )


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "not available"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{seconds:.0f}s"
    return format_duration(seconds)


def offset_text(seconds: float) -> str:
    """``4m12s after`` or ``30s before``: evidence's age, counted from the firing."""
    return f"{seconds_text(abs(seconds))} {'before' if seconds < 0 else 'after'}"


_MD_SPECIAL = re.compile(r"[\\`|<\[\]\r\n]")
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "|": "\\|", "[": "\\[", "]": "\\]"})
_NEWLINES = re.compile(r"\r\n|[\r\n]")
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")


def md_escape(text: str) -> str:
    """``text`` as literal Markdown on one line: newlines become spaces; backslashes,
    backticks, pipes and brackets (a forged link) are escaped, and so are a ``<``
    that could open an HTML tag and a leading ``#``. Other control characters are
    shown as their escapes (:func:`console.text.inert`)."""
    if _MD_SPECIAL.search(text):
        text = _NEWLINES.sub(" ", text).translate(_MD_ESCAPES)
        text = _HTML_START.sub(r"\\<", text)
    text = inert(text)
    if text.startswith("#"):
        text = "\\" + text
    return text


def md_code(text: str) -> str:
    """``text`` as an inline code span, whatever backticks it holds."""
    text = inert(_NEWLINES.sub(" ", text))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, lang: str = "") -> list[str]:
    text = inert(text, multiline=True)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *text.strip("\n").splitlines(), fence]


def value_text(value: float | None) -> str:
    return "not known" if value is None else f"{value:.4g}"
