"""One redaction for every secret a source's settings hold, in every form it can echo in.

A server that echoes the ``Authorization`` header in its error body, a URL with
``user:password@``, a library that quotes a bad header value in its exception: each
would carry a credential into an error message, and from there into the snapshot,
the store, the audit log, the screen and the exports. :class:`Redactor` masks:

* each secret value as configured and as sent (tokens and header values are sent
  without surrounding whitespace, so a token read from a CRLF file is sent without
  its ``\\r\\n``: both forms are masked), and the token after ``Bearer ``/``Basic ``;
* each of those as Python's ``repr`` and ``bytes`` repr write it (``abc\\r``), JSON-
  escaped, URL-encoded (``quote`` and ``quote_plus``) and base64-encoded;
* ``base64(user:password)``, as a Basic ``Authorization`` header carries it;
* the ``user:password@`` part of any URL.

:func:`settings_secrets` finds the secrets of any settings model: every ``SecretStr``
anywhere in it (so an adapter's own options are covered without a list), the
password in its URL, and header values nested in raw ``options``. The adapter
base class applies a source's redactor to every error its adapter raises
(see :class:`adapters.base.Adapter`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked in messages: masking every ``1`` or ``on`` would
garble them, and a credential that short protects nothing anyway."""

EXCERPT = 200
"""Characters of an unexpected answer quoted in an error message."""

_SPACE = re.compile(r"\s+")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")
_SCHEMES = ("Bearer ", "Basic ", "Token ", "token ", "bearer ", "basic ")


def sent_form(value: str) -> str:
    """A credential as it goes on the wire: without the whitespace (a file's CR LF)
    around it, which no header may carry."""
    return value.strip()


def one_line(text: str, limit: int = EXCERPT) -> str:
    """Whitespace collapsed, cut to ``limit`` characters. Redact before cutting: a
    cut can leave part of a secret no redaction recognises."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def redact_url(url: str) -> str:
    """``url`` without its ``user:password@`` part."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(r"\g<scheme>", url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def secret_forms(value: str) -> set[str]:
    """Every form ``value`` may be echoed in (see the module's docstring)."""
    bases = {value, sent_form(value)}
    for base in list(bases):
        for scheme in _SCHEMES:
            if base.startswith(scheme):
                bases.add(sent_form(base[len(scheme) :]))
    forms: set[str] = set()
    for base in bases:
        forms.update(
            (
                base,
                repr(base)[1:-1],
                repr(base.encode("utf-8", "surrogateescape"))[2:-1],
                json.dumps(base)[1:-1],
                json.dumps(base, ensure_ascii=False)[1:-1],
                quote(base, safe=""),
                quote_plus(base),
                base64.b64encode(base.encode("utf-8", "surrogateescape")).decode(),
            )
        )
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def basic_auth_forms(user: str, password: str) -> set[str]:
    """``user:password`` as a Basic ``Authorization`` header carries it."""
    pairs = {f"{user}:{password}", f"{user}:{sent_form(password)}"}
    return {base64.b64encode(pair.encode()).decode() for pair in pairs}


_SECRET_KEYS = frozenset({"password", "token", "bearer_token"})
_SECRET_QUERY = re.compile(r"token|key|secret|pass|auth|sig|cred", re.IGNORECASE)
"""Query parameters of a source's URL whose values are credentials (``?token=``,
``?api_key=``, ``?X-Amz-Signature=``): masked like a declared secret."""
"""Keys of raw (not yet validated) ``options`` whose string values are credentials;
every value under a ``headers`` key is one too."""


def _walk(value: Any, found: list[str], *, header: bool = False) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(getattr(value, name), found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if header or (key in _SECRET_KEYS and isinstance(item, str)):
                found.append(str(item))
            else:
                _walk(item, found, header=key == "headers" and isinstance(item, Mapping))
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, found)


def settings_secrets(settings: BaseModel) -> tuple[str, ...]:
    """Every credential ``settings`` hold: each ``SecretStr`` anywhere in them, the
    password in their URL, header values and passwords in raw ``options``, and the
    Basic ``Authorization`` value of each user and password, and the values of
    credential-named query parameters in their URL. :class:`Redactor` masks each
    in every form it may be echoed in."""
    found: list[str] = []
    _walk(settings, found)
    basic = getattr(settings, "basic_auth", None)
    if basic is not None:
        found.extend(basic_auth_forms(basic.username, basic.password.get_secret_value()))
    url = getattr(settings, "url", "")
    netloc = urlsplit(url).netloc if isinstance(url, str) else ""
    if "@" in netloc:
        user, _, password = netloc.rpartition("@")[0].partition(":")
        found.extend((password, unquote(password)))
        found.extend(basic_auth_forms(unquote(user), unquote(password)))
    query = urlsplit(url).query if isinstance(url, str) else ""
    for key, value in parse_qsl(query, keep_blank_values=False):
        if _SECRET_QUERY.search(key):
            found.append(value)
    return tuple(dict.fromkeys(value for value in found if value))


class Redactor:
    """Masks a fixed set of secrets (each in every form it may take) and URL
    credentials. Cheap on clean text: one regex search."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= secret_forms(secret)
        # Longest first, so a secret is masked whole before any part of it.
        self.forms = tuple(sorted(forms, key=len, reverse=True))
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in self.forms)) if self.forms else None
        )

    @classmethod
    def for_settings(cls, *settings: BaseModel) -> Redactor:
        """The redactor for the credentials of one or more sources' settings."""
        return cls(s for each in settings for s in settings_secrets(each))

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if "@" in text:
            text = _USERINFO.sub(r"\g<scheme>", text)
        return text
