"""HTTP clients for the adapters that speak JSON over HTTP with httpx.

:class:`HttpClient` (awaited; its requests and their parses run in worker threads
of its own) and :class:`~adapters.blocking_http.BlockingHttpClient` (for an adapter
that reads and parses its answers in worker threads of the adapter's) are both
``httpx.Client``, built the same way from a source's settings (timeout, headers,
bearer and basic auth, one shared TLS context from :mod:`adapters.tls`) and retry
the same way (:class:`HttpSource`), with exponential backoff. Every failure becomes
an :class:`HttpError` (an :class:`~adapters.base.AdapterError`) with a one-line
message, the URL and a hint that names the system, and never a secret.

Retries depend on whether a request may be repeated:

* Idempotent requests (GET, HEAD, OPTIONS, PUT, DELETE, and every request of a
  :class:`~adapters.blocking_http.BlockingHttpClient`, whose POSTs are read-only
  queries) are retried on any transport error (connect, read, write, timeouts) and
  on 408, 429 and 5xx.
* Other methods (POST, PATCH) are retried only when the request certainly never
  reached the server: ``httpx.ConnectError``, ``ConnectTimeout`` and
  ``PoolTimeout``. After a read timeout, a dropped connection or any answer,
  the server may have applied it, so it is not sent again: the error says so
  (``in_doubt``), and the caller reads the state back before trying again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx

from adapters.base import AdapterError
from adapters.redaction import EXCERPT, Redactor, one_line, redact_url, settings_secrets
from adapters.settings import SourceSettings
from adapters.threads import DaemonPool
from adapters.tls import tls_context

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors after which the server certainly never saw the request."""

Describe = Callable[[httpx.Response, Any], "tuple[str, str] | None"]
"""A system's reading of an error answer: ``(response, parsed JSON or None)`` →
``(message, hint)``, or None for the generic one."""


class HttpError(AdapterError):
    """A request failed. ``status`` and ``payload`` (the parsed JSON error answer, for
    the adapter to read, never to display: it is not redacted) are set when the server
    answered; ``in_doubt`` when a non-idempotent request may have been applied."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        url: str = "",
        hint: str = "",
        status: int | None = None,
        payload: Any = None,
        in_doubt: bool = False,
    ) -> None:
        super().__init__(source, message, url=url, hint=hint)
        self.status = status
        self.payload = payload
        self.in_doubt = in_doubt


def backoff_delay(settings: SourceSettings, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (0 for the first) before the
    next: ``backoff``, doubled for each further attempt."""
    return float(settings.backoff * 2**attempt)


def attempts_made(attempt: int) -> str:
    """``"1 attempt"``, ``"3 attempts"``: how many were made once ``attempt`` (0 for the
    first) failed, for an error message."""
    return f"{attempt + 1} attempt{'s' if attempt else ''}"


class HttpSource:
    """What both clients share: the httpx client's settings, the retry decisions and
    the wording of every error, redacted."""

    def __init__(
        self,
        source: str,
        settings: SourceSettings,
        *,
        system: str,
        base_path: str = "",
        describe: Describe | None = None,
        extra_secrets: Iterable[str] = (),
        slow_hint: str = "",
    ) -> None:
        self.source = source
        self.settings = settings
        self.system = system
        self.describe = describe
        self.slow_hint = slow_hint or f"{system} is slow or unreachable; raise `timeout`"
        self.redact = Redactor((*settings_secrets(settings), *extra_secrets))
        self.base_url = settings.url.rstrip("/") + base_path.rstrip("/")
        self.attempts = settings.retries + 1
        self._open()

    def _open(self) -> None:
        """Build the httpx client, from :meth:`_client_options`."""
        raise NotImplementedError

    def _client_options(self) -> dict[str, Any]:
        """The arguments of every ``httpx.Client`` built here."""
        settings = self.settings
        auth = None
        if settings.basic_auth is not None:
            auth = httpx.BasicAuth(*settings.basic_auth.credentials())
        return {
            "base_url": self.base_url,
            "timeout": settings.timeout,
            "headers": settings.http_headers(),
            "auth": auth,
            "verify": tls_context(settings),
        }

    def excerpt(self, text: str, limit: int = EXCERPT) -> str:
        """A piece of an answer to quote in a message: secrets masked before it is cut."""
        return one_line(self.redact(text), limit)

    def url_for(self, path: str) -> str:
        """Where ``path`` goes, fit for display (no credentials)."""
        return redact_url(f"{self.base_url}{path}")

    def error(
        self,
        message: str,
        *,
        url: str = "",
        hint: str = "",
        status: int | None = None,
        payload: Any = None,
        in_doubt: bool = False,
    ) -> HttpError:
        """An error for this source, secrets masked in every part."""
        return HttpError(
            self.source,
            one_line(self.redact(message), 1000),
            url=self.redact(url),
            hint=self.redact(hint),
            status=status,
            payload=payload,
            in_doubt=in_doubt,
        )

    def _failed(
        self, exc: httpx.HTTPError | httpx.InvalidURL, url: str, attempt: int, *, idempotent: bool
    ) -> HttpError | None:
        """After attempt ``attempt`` raised ``exc``: the error to give up with, or None
        to send the request again."""
        last = attempt == self.attempts - 1
        tried = attempts_made(attempt)
        if isinstance(exc, NEVER_SENT):
            return self._transport_error(exc, url, tried, in_doubt=False) if last else None
        if isinstance(exc, httpx.TransportError):
            if last or not idempotent:
                return self._transport_error(exc, url, tried, in_doubt=not idempotent)
            return None
        # Decoding, too many redirects, a bad URL: not transient.
        in_doubt = not idempotent and not isinstance(exc, httpx.InvalidURL)
        doubt = "; it may have been applied" if in_doubt else ""
        reason = f"{exc.__class__.__name__}: {self.excerpt(str(exc), 120)}"
        return self.error(
            f"request failed ({reason}){doubt}",
            url=url,
            hint=f"is `url` the {self.system} base URL?",
            in_doubt=in_doubt,
        )

    def _retried(
        self, request: Callable[[], httpx.Response], url: str, *, idempotent: bool
    ) -> httpx.Response:
        """``request()`` (to ``url``) and its retries, with backoff, blocking: the last
        answer, whatever its status, or :class:`HttpError` when none came."""
        for attempt in range(self.attempts):
            try:
                response = request()
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                if (error := self._failed(exc, url, attempt, idempotent=idempotent)) is not None:
                    raise error from None
            else:
                if not self._retries_answer(response.status_code, attempt, idempotent=idempotent):
                    return response
            time.sleep(backoff_delay(self.settings, attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _retries_answer(self, status: int, attempt: int, *, idempotent: bool) -> bool:
        """Whether an answer with ``status`` to attempt ``attempt`` is sent again."""
        return status in RETRY_STATUSES and idempotent and attempt < self.attempts - 1

    def _transport_error(
        self, exc: httpx.TransportError, url: str, tried: str, *, in_doubt: bool
    ) -> HttpError:
        doubt = "; it may have been applied" if in_doubt else ""
        doubt_hint = "read the state back before trying again; " if in_doubt else ""
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, NEVER_SENT):
            what = "timed out" if not in_doubt else "timed out waiting for the answer"
            return self.error(
                f"{what} after {self.settings.timeout:g}s ({tried}){doubt}",
                url=url,
                hint=f"{doubt_hint}{self.slow_hint}",
                in_doubt=in_doubt,
            )
        detail = self.excerpt(str(exc), 120)
        reason = f"{exc.__class__.__name__}: {detail}" if detail else exc.__class__.__name__
        if isinstance(exc, NEVER_SENT):
            tls = "SSL" in detail or "CERTIFICATE" in detail
            return self.error(
                f"cannot connect ({reason}; {tried})",
                url=url,
                hint="check `tls:` in the config"
                if tls
                else f"is {self.system} running and reachable?",
            )
        return self.error(
            f"connection failed ({reason}; {tried}){doubt}",
            url=url,
            hint=f"{doubt_hint}is {self.system} running and reachable?",
            in_doubt=in_doubt,
        )

    def _status_error(
        self, response: httpx.Response, url: str, tried: str, *, idempotent: bool
    ) -> HttpError:
        status = response.status_code
        try:
            payload = response.json() if response.content.strip() else None
        except ValueError:
            payload = None
        described = self.describe(response, payload) if self.describe else None
        if described is not None:
            message, hint = described
            message = f"HTTP {status}: {self.excerpt(message, 300)}"
        else:
            message, hint = f"HTTP {status}: {self.excerpt(response.text)!r}", ""
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            message = f"HTTP {status}: redirected to {location or 'somewhere else'}"
            hint = "set `url` to where the server redirects"
        elif status in (401, 403) and not hint:
            hint = (
                f"{self.system} refused the credentials; "
                "check `headers`, `bearer_token` or `basic_auth`"
            )
        elif status == 404 and not hint:
            hint = f"is `url` the {self.system} base URL?"
        in_doubt = not idempotent and status >= 500
        if status in RETRY_STATUSES and idempotent:
            message = f"{message} ({tried})"
        if in_doubt:
            message = f"{message}; it may have been applied"
            hint = "read the state back before trying again" + (f"; {hint}" if hint else "")
        return self.error(
            message, url=url, hint=hint, status=status, payload=payload, in_doubt=in_doubt
        )


class HttpClient(HttpSource):
    """A source's requests for an adapter that awaits them: each is sent, retried and
    its answer parsed in a worker thread of the client's own, on an ``httpx.Client``.

    The event loop that awaits them is the UI's: at hundreds of alerts, reading and
    parsing an answer there held keys back. (Nor does the process load an async
    HTTP stack for it.) Up to :data:`THREADS` requests run at once; a call still in
    flight when the client is closed is abandoned, not waited for.

    ``system`` names what is on the other end in hints ("is MLflow running and
    reachable?"); ``base_path`` is put before every request path; ``describe``
    turns a system's error answers into readable messages.
    """

    THREADS = 8
    """Requests in flight at once, and the connections kept open for them."""

    _client: httpx.Client

    def _open(self) -> None:
        threads = self.THREADS
        limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
        self._client = httpx.Client(**self._client_options(), limits=limits)
        self._pool = DaemonPool(threads, f"{self.source}-http")

    async def aclose(self) -> None:
        """Give up on the calls in flight and close the connections."""
        self._pool.shutdown(wait=False, cancel_futures=True, abandon_running=True)
        self._client.close()

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        parse: Callable[[Any], Any] | None = None,
    ) -> Any:
        """Send a request and return its JSON answer (None for an empty one); with
        ``parse``, what ``parse`` makes of it, in the same worker thread."""

        def call() -> Any:
            body = self._request_json(method, path, params, json, headers)
            return body if parse is None else parse(body)

        return await self._in_thread(call)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with retries; return a 2xx answer or raise :class:`HttpError`."""
        return await self._in_thread(lambda: self._send(method, path, params, json, headers))

    def _request_json(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> Any:
        response = self._send(method, path, params, json, headers)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise self.error(
                f"malformed response (not JSON): {self.excerpt(response.text)!r}",
                url=self.url_for(path),
                hint=f"is `url` the {self.system} base URL, not a proxy or login page?",
                status=response.status_code,
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS
        url = self.url_for(path)
        response = self._retried(
            lambda: self._client.request(method, path, params=params, json=json, headers=headers),
            url,
            idempotent=idempotent,
        )
        if response.status_code >= 300:
            tried = attempts_made(self.attempts - 1)  # only said of a status retried each time
            raise self._status_error(response, url, tried, idempotent=idempotent)
        return response
