"""The blocking HTTP client, :class:`BlockingHttpClient`: for an adapter whose own
worker threads send its requests and read their answers. It shares the settings,
retries and error wording of :mod:`adapters.http`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from adapters.http import HttpError, HttpSource, attempts_made
from adapters.settings import SourceSettings


class BlockingHttpClient(HttpSource):
    """An ``httpx.Client`` for one source, for an adapter that makes its requests (and
    reads their answers) in worker threads of its own: the same settings, retries and
    error messages as :class:`~adapters.http.HttpClient`.

    Its requests are reads, so every one is retried, POST included. ``connections``
    sizes the connection pool to the threads that share the client. Redirects are
    followed. An answer that is not 2xx is given back once the retries are spent,
    for the caller to read: a system's error answers say more than the status does
    (:meth:`status_error` words the rest).
    """

    def __init__(
        self,
        source: str,
        settings: SourceSettings,
        *,
        system: str,
        connections: int,
        slow_hint: str = "",
    ) -> None:
        self._connections = connections
        super().__init__(source, settings, system=system, slow_hint=slow_hint)

    _client: httpx.Client

    def _open(self) -> None:
        connections = self._connections
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._client = httpx.Client(**self._client_options(), limits=limits, follow_redirects=True)

    def close(self) -> None:
        """Close the pooled connections; a request still in flight in another thread
        fails (or is left to end), and nobody waits for it here."""
        self._client.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with retries, blocking; return the last answer, whatever its
        status, or raise :class:`HttpError` when no answer came."""
        return self._retried(
            lambda: self._client.request(method, path, params=params, data=data),
            self.url_for(path),
            idempotent=True,
        )

    def status_error(self, response: httpx.Response, path: str) -> HttpError:
        """The error for an answer to ``path`` that :meth:`send` gave back and the
        caller cannot read: redirects, refused credentials, a proxy's error page."""
        tried = attempts_made(self.attempts - 1)  # a retried status came back every time
        return self._status_error(response, self.url_for(path), tried, idempotent=True)
