"""Start-up costs only what a command uses: checked by what a fresh interpreter imports.

`--version` and `--help` import none of the libraries the commands need (pydantic,
YAML, httpx, ...), `status --json` no rendering library, and every HTTP client of a
process shares one SSL context per distinct TLS setting.
"""

from __future__ import annotations

import argparse
import gc
import http.server
import json
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters import registry
from adapters.blocking_http import BlockingHttpClient
from adapters.http import HttpClient, HttpError
from adapters.settings import SourceSettings
from console.cli import main as cli
from console.cli.main import COMMAND_GROUPS, build_parser, parse_args

HEAVY = {"pydantic", "yaml", "httpx", "orjson", "textual", "rich"}
"""What a command that does not need them must not pay for."""


@dataclass(frozen=True)
class Run:
    """What ``console.cli.main.main`` did in a fresh interpreter."""

    code: int
    out: str
    modules: set[str]
    """Every module imported by the end."""
    frozen: int
    """Objects the collector was told to leave alone (``gc.get_freeze_count()``)."""


def probe_main(*argv: str, env: dict[str, str] | None = None, as_program: bool = False) -> Run:
    """``console.cli.main.main(argv)`` in a fresh interpreter; ``as_program`` runs it as the
    ``mlconsole`` script does, with the words in ``sys.argv`` and no argument."""
    call = "main()" if as_program else f"main({list(argv)!r})"
    probe = textwrap.dedent(f"""
        import contextlib, gc, io, json, sys
        from console.cli.main import main
        sys.argv = ["mlconsole", *{list(argv)!r}]
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                code = {call}
        except SystemExit as exc:
            code = exc.code
        print(json.dumps([code, out.getvalue(), sorted(sys.modules), gc.get_freeze_count()]))
    """)
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    code, out, modules, frozen = json.loads(run.stdout.splitlines()[-1])
    return Run(code, out, set(modules), frozen)


def run_main_modules(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """``console.cli.main.main(argv)`` in a fresh interpreter: its exit code, its output, and
    every module it imported."""
    run = probe_main(*argv, env=env)
    return run.code, run.out, run.modules


def run_main(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    """:func:`run_main_modules`, with the top-level packages of HEAVY it imported."""
    code, out, modules = run_main_modules(*argv, env=env)
    return code, out, {m.split(".")[0] for m in modules} & HEAVY


def test_version_imports_none_of_the_command_libraries() -> None:
    code, out, heavy = run_main("--version")
    assert (code, out) == (0, "mlconsole 0.1.0\n")
    assert heavy == set()


def test_version_says_what_the_parser_would_say() -> None:
    """`--version` is answered before the parser is built: in the same words."""
    from console import __version__
    from console.cli.main import build_parser

    code, out, _ = run_main("--version")
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--version"])
    assert exited.value.code == code == 0
    assert out == f"mlconsole {__version__}\n"


COMMANDS = [
    [],
    ["status"],
    ["check-config"],
    ["dashboard"],
    ["rollback"],
    ["fallback"],
    ["silence"],
    ["pipeline"],
    ["audit"],
    ["audit", "verify"],
    ["incident"],
    ["incident", "list"],
    ["export"],
    ["lab"],
    ["lab", "up"],
    ["runbook"],
    ["runbook", "run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mlconsole")
def test_help_imports_none_of_the_command_libraries(command: list[str]) -> None:
    code, out, heavy = run_main(*command, "--help")
    assert code == 0 and out.startswith("usage: mlconsole")
    assert heavy == set(), f"{' '.join(command)} --help imported {heavy}"


def test_no_config_is_said_without_loading_the_config_models(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)}
    code, _, heavy = run_main("status", "--json", env=env)
    assert code == 2
    assert heavy == set()


@pytest.fixture(scope="module")
def status_json(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, set[str]]:
    """`status --json` run once in a fresh interpreter, on a config whose one source
    refuses at once: its exit code, its output and every module it imported."""
    config = tmp_path_factory.mktemp("status") / "c.yaml"
    config.write_text(
        "sources:\n  am: {type: alertmanager, url: 'http://127.0.0.1:9', retries: 0, timeout: 1}\n"
    )
    code, out, modules = run_main_modules("--config", str(config), "status", "--json")
    assert code == 3  # the source refused: unreachable
    assert json.loads(out)["sources"]["am"]["state"] == "down"
    return code, out, modules


def test_status_json_imports_no_rendering_library(status_json: tuple[int, str, set[str]]) -> None:
    """`status --json` prints JSON: rich (the tables) and textual stay unimported."""
    heavy = {m.split(".")[0] for m in status_json[2]} & HEAVY
    assert not {"rich", "textual"} & heavy
    assert "pydantic" in heavy and "httpx" in heavy  # it did load the config and ask


OTHER_COMMANDS = {
    "console.cli.action",
    "console.cli.audit",
    "console.cli.export",
    "console.cli.incident",
    "console.cli.runbook",
    "console.cli.lab",
}
"""The modules that add the other commands' parsers."""


def test_status_json_builds_no_other_command(status_json: tuple[int, str, set[str]]) -> None:
    """A command that runs builds its own parser only, and imports no other command."""
    assert not OTHER_COMMANDS & status_json[2]


def test_status_json_imports_no_incident_timeline(status_json: tuple[int, str, set[str]]) -> None:
    """`status --json` writes times (console.times), and builds no incident timeline."""
    assert "console.times" in status_json[2]
    assert "console.incidents.timeline" not in status_json[2]


def test_status_json_opens_no_store(status_json: tuple[int, str, set[str]]) -> None:
    """`status` keeps no alias history: neither it nor SQLite is imported; nor is the
    "did you mean" of a config in error."""
    assert not {"console.sources.alias_history", "sqlite3", "difflib"} & status_json[2]


def test_a_command_runs_with_fewer_young_collections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a command runs (its imports, its config) the collector's first threshold
    is raised; whoever called it has its own thresholds back when it returns."""
    seen = []
    resolve = cli.config_for

    def resolving(args: argparse.Namespace, explicit: str | None = None) -> object:
        seen.append(gc.get_threshold())
        return resolve(args, explicit)

    monkeypatch.setattr(cli, "config_for", resolving)
    before = gc.get_threshold()
    assert cli.main(["--config", str(tmp_path / "none.yaml"), "status"]) == 2
    assert seen == [(cli.GC_YOUNG_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before


def test_status_as_the_program_leaves_its_heap_to_the_exit(tmp_path: Path) -> None:
    """Run as the program, `status` ends the process once it has printed: the heap is
    frozen, so the collections at exit do not walk it. Called as a function, it leaves
    its caller's collector as it was."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n  am: {type: alertmanager, url: 'http://127.0.0.1:9', retries: 0, timeout: 1}\n"
    )
    words = ("--config", str(config), "status", "--json")
    program = probe_main(*words, as_program=True)
    assert program.code == 3 and json.loads(program.out)["sources"]["am"]["state"] == "down"
    assert program.frozen > 0
    called = probe_main(*words)
    assert called.code == 3 and json.loads(called.out)["sources"]["am"]["state"] == "down"
    assert called.frozen == 0


def test_a_command_of_a_group_imports_that_group_alone(tmp_path: Path) -> None:
    code, _, modules = run_main_modules("audit", "verify", "--db", str(tmp_path / "none.db"))
    assert code != 0  # no such log
    assert OTHER_COMMANDS & modules == {"console.cli.audit"}


def test_the_dashboard_imports_no_command_group(tmp_path: Path) -> None:
    """`mlconsole --config PATH` (the dashboard, no command named) builds this module's
    parser alone: the other commands' modules are not on the way to the first paint."""
    code, _, modules = run_main_modules("--config", str(tmp_path / "missing.yaml"))
    assert code == 2  # no such config: refused before the dashboard opens
    assert OTHER_COMMANDS & modules == set()


def test_the_dashboard_screen_leaves_the_store_for_after_the_first_paint() -> None:
    """The app and its dashboard import nothing of the incident store (its incidents,
    the audit log, timelines): the store is opened in a thread after the first paint."""
    code = (
        "import sys, screens.app, screens.dashboard, screens.alert_detail; "
        "print(' '.join(sorted(sys.modules)))"
    )
    modules = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert "screens.dashboard" in modules
    assert (
        modules
        & {
            "console.incidents.book",
            "console.triage.store",
            "console.audit.log",
            "console.incidents.timeline",
            "console.sources.alias_history",
            "sqlite3",
        }
        == set()
    )


def subcommands(parser: argparse.ArgumentParser) -> list[str]:
    """The command names ``parser`` takes, in the order `--help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


OWN_COMMANDS = ["dashboard", "status", "check-config"]


def test_each_command_group_holds_what_its_module_adds() -> None:
    """The table of command groups names exactly the commands each module adds, in
    `--help`'s order; a command's parser holds its group and the cli's own commands."""
    grouped = [name for names in COMMAND_GROUPS for name in names]
    assert subcommands(build_parser()) == OWN_COMMANDS + grouped
    for names in COMMAND_GROUPS:
        for name in names:
            assert subcommands(build_parser(name)) == OWN_COMMANDS + list(names)
    for name in OWN_COMMANDS:
        assert subcommands(build_parser(name)) == OWN_COMMANDS


WORDS = [
    ["status", "--json"],
    ["--config", "c.yaml", "status", "--wait", "2"],
    ["-cc.yaml", "status"],
    ["-c", "status", "status"],  # a config file named like a command
    ["--config=c.yaml", "--read-only", "rollback", "m1", "--to", "3"],
    ["--actor", "status", "rollback", "m1"],  # an actor named like a command
    ["--act", "status", "rollback", "m1"],  # an abbreviated option takes its value too
    ["--read", "fallback", "m1", "on"],
    ["incident", "list", "--json"],
    ["export", "INC-1", "--format", "json"],
    ["audit", "verify"],
    ["lab", "status", "--json"],
    ["runbook", "schema"],
    ["dashboard"],
    ["check-config", "c.yaml"],
    [],
    ["--config", "c.yaml"],  # the dashboard, no command named
    ["-c", "c.yaml", "--read-only", "--actor", "me"],
    ["--config"],  # its value missing
    ["--config", "c.yaml", "--bogus"],
    ["--version"],
    ["status", "--wait", "soon"],  # a usage error inside the command
    ["status", "rollback"],  # a word the command does not take
    ["bogus"],  # not a command
    ["--bogus", "status"],  # not an option
    ["audit"],  # its own command missing
    ["--", "status"],
    ["status", "--help"],
    ["--help", "status"],
    ["-h"],
]


@pytest.mark.parametrize("words", WORDS, ids=lambda w: " ".join(w) or "(nothing)")
def test_one_command_parser_reads_words_as_the_full_parser(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Building one command's parser is only a shortcut: the arguments, the help, the
    usage errors and exit codes are the full parser's, word for word."""

    def outcome(parse: Callable[[list[str]], argparse.Namespace]) -> tuple[object, ...]:
        try:
            args = parse(words)
        except SystemExit as exc:
            captured = capsys.readouterr()
            return ("exit", exc.code, captured.out, captured.err)
        fields = vars(args)
        func = fields.pop("func", None)
        return ("parsed", fields, getattr(func, "__qualname__", func))

    assert outcome(parse_args) == outcome(lambda w: build_parser().parse_args(w))


def test_adapters_are_looked_up_in_the_installed_metadata_once() -> None:
    """Reading every package's entry points costs tens of ms; a config with five
    sources (and its option check) must not pay it six times."""
    calls = []
    real = registry.entry_points

    def counting(**kwargs: str) -> object:
        calls.append(kwargs)
        return real(**kwargs)

    registry._entry_points.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(registry, "entry_points", counting)
            assert "alertmanager" in registry.available()
            for _ in range(5):
                registry.load("alertmanager")
            registry.load("prometheus")
        assert calls == [{"group": registry.GROUP}]
    finally:
        registry._entry_points.cache_clear()


@pytest.fixture
def scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """Every read of all installed packages' entry points, from a clean cache."""
    calls: list[dict[str, str]] = []
    real = registry.entry_points

    def counting(**kwargs: str) -> object:
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry._entry_points.cache_clear()
    registry._builtin_entry_points.cache_clear()
    yield calls
    registry._entry_points.cache_clear()
    registry._builtin_entry_points.cache_clear()


def test_builtin_types_are_found_without_reading_every_package(
    scans: list[dict[str, str]], tmp_path: Path
) -> None:
    """The usual config, built-in types only: checked and loaded from this package's
    own metadata."""
    from console.config.loader import load_config
    from console.sources.build import build_adapters

    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n"
        "  prometheus: {type: prometheus, url: 'http://127.0.0.1:9'}\n"
        "  am: {type: alertmanager, url: 'http://127.0.0.1:9'}\n"
        "  registry: {type: mlflow, url: 'http://127.0.0.1:9'}\n"
    )
    adapters, failed = build_adapters(load_config(config))
    assert sorted(adapters) == ["am", "prometheus", "registry"] and not failed
    assert registry.is_installed("http-switch")
    assert scans == []


def test_a_third_party_adapter_is_found_through_the_entry_point_group(
    scans: list[dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package that registers a type in the group: listed and loaded."""
    (tmp_path / "acme_metrics.py").write_text(
        "from adapters.prometheus import PrometheusAdapter\n"
        "class AcmeAdapter(PrometheusAdapter):\n"
        "    pass\n"
    )
    info = tmp_path / "acme_metrics-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-metrics\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\nacme = acme_metrics:AcmeAdapter\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert registry.is_installed("acme") and not registry.is_installed("nonesuch")
    assert registry.load("acme").__name__ == "AcmeAdapter"
    assert {"acme", "prometheus", "mlflow"} <= set(registry.available())
    with pytest.raises(registry.AdapterLoadError, match="unknown adapter type 'nonesuch'"):
        registry.load("nonesuch")
    assert scans == [{"group": registry.GROUP}]  # read once, for all of these


def test_a_plugin_whose_settings_cannot_be_built_is_a_config_error(
    scans: list[dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third-party adapter whose settings model pydantic cannot build fails as it is
    imported: the config check says so on the source's `type:` line, and nothing
    raises past it (the config's own models are built late; adapters' are not)."""
    from console.config.loader import load_config
    from console.config.located import ConfigError

    (tmp_path / "acme_broken.py").write_text(
        "import threading\n"
        "from adapters.base import SourceSettings\n"
        "from adapters.prometheus import PrometheusAdapter\n"
        "class BrokenSettings(SourceSettings):\n"
        "    lock: threading.Lock = None\n"
        "class BrokenAdapter(PrometheusAdapter):\n"
        "    settings_model = BrokenSettings\n"
    )
    info = tmp_path / "acme_broken-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{registry.GROUP}]\nbroken = acme_broken:BrokenAdapter\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n  acme:\n    type: broken\n    url: 'http://127.0.0.1:9'\n"
        "    options: {lock: 1}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    (issue,) = raised.value.issues
    assert issue.line == 3 and "failed to import" in str(issue)


# -- one SSL context per distinct TLS setting ----------------------------------------


def settings(url: str, **tls: object) -> SourceSettings:
    return SourceSettings.model_validate({"url": url, "tls": tls, "retries": 0})


def tls_context(source: SourceSettings) -> ssl.SSLContext:
    from adapters.tls import tls_context

    return tls_context(source)


def client_context(client: HttpClient | BlockingHttpClient) -> ssl.SSLContext:
    """The context the client's connection pool opens TLS connections with."""
    context = client._client._transport._pool._ssl_context  # type: ignore[attr-defined]
    assert isinstance(context, ssl.SSLContext)
    return context


def test_clients_with_the_same_tls_setting_share_one_context() -> None:
    one = HttpClient("am", settings("https://am.example:9093"), system="Alertmanager")
    two = HttpClient("mlflow", settings("https://mlflow.example"), system="MLflow")
    assert client_context(one) is client_context(two) is tls_context(one.settings)
    assert client_context(one).verify_mode == ssl.CERT_REQUIRED
    assert client_context(one).check_hostname
    assert client_context(one).cert_store_stats()["x509_ca"] > 0  # the default bundle


def test_the_prometheus_adapter_shares_the_context_too() -> None:
    """Its blocking client (worker threads) is built from the same shared context."""
    from adapters.prometheus import PrometheusAdapter

    prometheus = PrometheusAdapter("prometheus", settings("https://prom.example:9090"))
    am = HttpClient("am", settings("https://am.example:9093"), system="Alertmanager")
    assert client_context(prometheus._http) is client_context(am) is tls_context(am.settings)


def test_a_different_tls_setting_gets_its_own_context() -> None:
    verified = tls_context(settings("https://a.example"))
    unverified = tls_context(settings("https://a.example", verify=False))
    assert unverified is not verified
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
    assert tls_context(settings("https://b.example", verify=False)) is unverified


def test_a_plain_http_source_loads_no_certificates() -> None:
    context = tls_context(settings("http://127.0.0.1:9093"))
    assert context is tls_context(settings("http://other:80"))
    assert context.cert_store_stats()["x509_ca"] == 0
    # It trusts nothing: were it ever used for TLS, it would refuse, never accept.
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    """A local HTTPS server that answers every GET with ``{"ok": true}``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_the_shared_contexts_verify_as_httpx_would(
    https_server: str, certificate: tuple[Path, Path]
) -> None:
    """ca_file trusts the server; the default bundle does not; verify: false connects."""
    cert, key = certificate
    trusting = HttpClient("s", settings(https_server, ca_file=str(cert)), system="S")
    default = HttpClient("s", settings(https_server), system="S")
    unverified = HttpClient("s", settings(https_server, verify=False), system="S")
    with_client_cert = HttpClient(
        "s",
        settings(https_server, ca_file=str(cert), cert_file=str(cert), key_file=str(key)),
        system="S",
    )
    try:
        assert await trusting.request_json("GET", "/") == {"ok": True}
        assert await unverified.request_json("GET", "/") == {"ok": True}
        assert await with_client_cert.request_json("GET", "/") == {"ok": True}
        with pytest.raises(HttpError) as refused:
            await default.request_json("GET", "/")
        assert "CERTIFICATE" in str(refused.value) and "tls:" in refused.value.hint
        assert client_context(with_client_cert) is not client_context(trusting)
    finally:
        for client in (trusting, default, unverified, with_client_cert):
            await client.aclose()


def test_the_config_can_follow_the_command() -> None:
    """`mlconsole status --config FILE` is how a newcomer writes it; before the command
    it works as it always did, and after it, it wins. The lab's commands take none."""
    assert parse_args(["status", "--config", "a.yaml"]).config == "a.yaml"
    assert parse_args(["--config", "a.yaml", "status"]).config == "a.yaml"
    assert parse_args(["-c", "a.yaml", "status", "-c", "b.yaml"]).config == "b.yaml"
    assert parse_args(["incident", "list", "--config", "a.yaml"]).config == "a.yaml"
    assert parse_args(["rollback", "m", "--dry-run", "-c", "a.yaml"]).config == "a.yaml"
    assert parse_args(["status"]).config is None
    with pytest.raises(SystemExit) as refused:
        parse_args(["lab", "status", "--config", "a.yaml"])
    assert refused.value.code == 2
