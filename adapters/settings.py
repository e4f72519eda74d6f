"""How an adapter reaches its system: the settings of one HTTP source.

:class:`SourceSettings` is what every adapter takes (its URL, timeout, retries,
headers, credentials and TLS options); adapters with options of their own subclass
it. The console's config extends it with scheduling fields. The contract classes in
:mod:`adapters.base` name it, and it stays importable from there.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.redaction import redact_url, sent_form


class TlsSettings(BaseModel):
    """TLS options for an HTTP source."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    verify: bool = True
    """Verify the server certificate. Turn off only for a lab with a self-signed cert."""
    ca_file: Path | None = None
    """A CA bundle to verify the server with, instead of the system store."""
    cert_file: Path | None = None
    """Client certificate (PEM) for mutual TLS."""
    key_file: Path | None = None
    """Private key for ``cert_file``, if it is not in the same file."""


class BasicAuth(BaseModel):
    """HTTP basic auth credentials."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    username: str
    password: SecretStr

    def credentials(self) -> tuple[str, str]:
        """``(username, password)`` as sent: a password read from a file loses the
        line ending around it (its raw form is still redacted)."""
        return self.username, sent_form(self.password.get_secret_value())


class SourceSettings(BaseModel):
    """How to reach one external system over HTTP.

    The console's config extends this with scheduling fields (interval and so
    on); an adapter needs only these.
    """

    # Not deferred: adapters subclass it, and a subclass pydantic cannot build must
    # fail when its adapter is imported (a load error the config check reports).
    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://[^\s/]+", description="Base URL")
    """Base URL of the system, e.g. ``http://127.0.0.1:9090``."""
    external_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+", description="Address for a browser"
    )
    """The address people open in a browser for this system, when it is not ``url``
    (the console reaches it through a tunnel, a proxy or an internal name). Runbook
    links and the graph and registry links of evidence and exports use it; default
    ``url``."""
    timeout: float = Field(default=5.0, gt=0, le=300)
    """Seconds to wait for one HTTP request before giving up."""
    retries: int = Field(default=2, ge=0, le=10)
    """Extra attempts after a failed request (connection errors, 5xx, 429)."""
    backoff: float = Field(default=0.5, ge=0, le=60)
    """First retry delay in seconds; doubles with each further attempt."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. ``Authorization: Bearer ${PROM_TOKEN}``. Never logged."""
    bearer_token: SecretStr | None = None
    """Shorthand for an ``Authorization: Bearer`` header."""
    basic_auth: BasicAuth | None = None
    """HTTP basic auth."""
    tls: TlsSettings = Field(default_factory=TlsSettings)
    """TLS options."""

    def browser_url(self) -> str:
        """Where a person opens this system: ``external_url``, else ``url``, without
        any ``user:password@`` and with no trailing slash."""
        return redact_url(self.external_url or self.url).rstrip("/")

    @property
    def retry_budget(self) -> float:
        """Seconds one request may take with every attempt and backoff: after this a
        source that has not answered will not."""
        return float(self.timeout * (self.retries + 1) + self.backoff * 2**self.retries)

    def http_headers(self) -> dict[str, str]:
        """The headers to send, secrets revealed (for the wire only, never for display).
        Values are sent without surrounding whitespace: a token read from a file with a
        CR LF ending would otherwise be refused by the HTTP library, which quotes the
        value in its error."""
        headers = {
            name: sent_form(value.get_secret_value()) for name, value in self.headers.items()
        }
        if self.bearer_token is not None:
            headers["Authorization"] = f"Bearer {sent_form(self.bearer_token.get_secret_value())}"
        return headers

    def client_cert(self) -> str | tuple[str, str] | None:
        """The client certificate in the form requests and httpx take."""
        if self.tls.cert_file is None:
            return None
        if self.tls.key_file is None:
            return str(self.tls.cert_file)
        return (str(self.tls.cert_file), str(self.tls.key_file))

    def verify(self) -> bool | str:
        """The ``verify`` argument for requests and httpx."""
        if not self.tls.verify:
            return False
        return str(self.tls.ca_file) if self.tls.ca_file else True
