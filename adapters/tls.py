"""TLS for the adapters' HTTP clients: one SSL context per distinct TLS setting.

Every ``httpx.Client`` of :mod:`adapters.http` and :mod:`adapters.blocking_http` is
given its context from :func:`tls_context`.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx

from adapters.settings import SourceSettings


def tls_context(settings: SourceSettings) -> ssl.SSLContext:
    """The SSL context for a source: one per distinct TLS setting in the process.

    httpx builds a context for every client, loading the whole CA bundle each time
    (about 28 ms); sources with the same ``tls:`` share one instead. It is built as
    httpx builds its own (its default bundle, ``$SSL_CERT_FILE`` or ``$SSL_CERT_DIR``;
    ``ca_file``; or no verification), with the client certificate loaded into it.
    A plain ``http://`` source gets a context that trusts nothing and loads nothing:
    it never makes a TLS connection, and if it were asked to, it would refuse.
    """
    if not settings.url.startswith("https://"):  # the config allows http:// or https:// only
        return _plain_http_context()
    tls = settings.tls
    return _tls_context(
        tls.verify,
        None if tls.ca_file is None else str(tls.ca_file),
        None if tls.cert_file is None else str(tls.cert_file),
        None if tls.key_file is None else str(tls.key_file),
        os.environ.get("SSL_CERT_FILE") or None,
        os.environ.get("SSL_CERT_DIR") or None,
    )


@functools.cache
def _plain_http_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, against no CA at all


@functools.cache
def _tls_context(
    verify: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    env_cert_file: str | None,
    env_cert_dir: str | None,
) -> ssl.SSLContext:
    # The environment is part of the key: httpx reads $SSL_CERT_FILE and $SSL_CERT_DIR.
    if verify and ca_file is not None:
        ctx = (
            ssl.create_default_context(capath=ca_file)
            if os.path.isdir(ca_file)
            else ssl.create_default_context(cafile=ca_file)
        )
    else:
        ctx = httpx.create_ssl_context(verify=verify)
    if cert_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
