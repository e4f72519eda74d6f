"""The few HTTP calls and socket checks the lab's control plane makes (standard library only)."""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import urllib.error
import urllib.request
from typing import Any


class HTTPCallError(Exception):
    """An HTTP call failed: no connection, or an error status (``status`` is then set)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _open(request: urllib.request.Request, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        with contextlib.suppress(ValueError, AttributeError):
            # Our service says {"error": ...}; MLflow says {"error_code": ..., "message": ...}.
            parsed = json.loads(detail)
            detail = str(parsed.get("error") or parsed.get("message") or detail)
        raise HTTPCallError(detail or f"HTTP {exc.code}", status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HTTPCallError(f"cannot reach {request.full_url}: {reason}") from None


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` and decode its JSON body."""
    return json.loads(_open(urllib.request.Request(url), timeout))


def get_bytes(url: str, timeout: float = 2.0) -> bytes:
    """GET ``url``; return the answer's body."""
    return _open(urllib.request.Request(url), timeout)


def post_json(url: str, payload: dict[str, Any], timeout: float = 5.0) -> Any:
    """POST ``payload`` as JSON to ``url`` and decode the JSON answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    return json.loads(_open(request, timeout))


def is_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether GET ``url`` answers 2xx."""
    try:
        _open(urllib.request.Request(url), timeout)
    except HTTPCallError:
        return False
    return True


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` right now.

    SO_REUSEADDR mirrors what the lab's servers do, so connections lingering in
    TIME_WAIT from a previous run do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def post_bytes(
    url: str, body: bytes, *, content_type: str = "text/plain", timeout: float = 30.0
) -> bytes:
    """POST ``body`` as it is to ``url``; return the answer's body."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    return _open(request, timeout)
