"""Shared fixtures. ``lab`` starts the real lab once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests use their own ports, so a demo lab on the default ones can stay up.
# MLCONSOLE_TEST_PORT_BASE moves them all (base+90, +93, +100, +500, +600, and
# +1090 to +1500 for the lab tests' own lab), so two checkouts can run their suites
# side by side when their bases are more than 1,500 apart. Every port must stay below
# the kernel's ephemeral range (32768 here), which pytest_configure checks.
_BASE = int(os.environ.get("MLCONSOLE_TEST_PORT_BASE", "28000"))
TEST_PORTS = (_BASE + 90, _BASE + 93, _BASE + 100, _BASE + 500)
#: The lab that tests/test_lab_integration.py starts and stops itself.
LAB_TEST_PORTS = (_BASE + 1090, _BASE + 1093, _BASE + 1100, _BASE + 1500)
#: The lean MLflow server of the adapter tests.
MLFLOW_TEST_PORT = _BASE + 600


def _ephemeral_ports() -> range:
    """The ports the kernel hands out to outgoing connections: a server told to listen
    on one of them can find it taken by any client's connection at that moment."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return range(32768, 61000)
    return range(low, high + 1)


def pytest_configure(config: pytest.Config) -> None:
    ephemeral = _ephemeral_ports()
    if ephemeral.stop - 1 >= _BASE + 90 and ephemeral.start <= _BASE + 1500:
        raise pytest.UsageError(
            f"MLCONSOLE_TEST_PORT_BASE={_BASE} puts the test servers' ports ({_BASE + 90}-"
            f"{_BASE + 1500}) among the kernel's ephemeral ports ({ephemeral.start}-"
            f"{ephemeral.stop - 1}), where a client's connection can take one first: "
            f"choose a base below {ephemeral.start - 1500}"
        )


#: Fixtures that start real servers: a test that uses one (even through another
#: fixture) is an integration test, marked as such whatever its module says, so
#: ``-m "not integration"`` never starts a server.
SERVER_FIXTURES = frozenset({"lab", "scale_lab"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's default store and audit log live in its own directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running lab (model service, Prometheus, Alertmanager, MLflow) on test ports."""
    from lab import control
    from lab.configs import Ports

    state_dir = Path(os.environ.get("MLCONSOLE_TEST_LAB_DIR") or tmp_path_factory.mktemp("lab"))
    # Six models, so every lab fault can break a model of its own at the same time.
    info = control.up(state_dir, models=6, ports=Ports(*TEST_PORTS), timeout=90)
    try:
        yield info
    finally:
        control.down(state_dir)


#: The scale lab's Alertmanager and VictoriaMetrics (base+95, base+429).
SCALE_TEST_PORTS = {"alertmanager": _BASE + 95, "victoria": _BASE + 429}
#: The scale lab of the tests: few models, a tenth of them breaching, fresh points
#: every second, so a test sees new values within a few seconds.
SCALE_TEST_MODELS = 50
SCALE_TEST_BREACHING = 0.1
SCALE_TEST_FEED_INTERVAL = 1.0


@pytest.fixture(scope="session")
def scale_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The scale lab (VictoriaMetrics with synthetic series, Alertmanager with the
    breaching models' alerts, the feeder) on test ports, started once per session."""
    from lab import control
    from lab.configs import Ports

    state_dir = tmp_path_factory.mktemp("scale-lab")
    info = control.up(
        state_dir,
        models=SCALE_TEST_MODELS,
        ports=Ports(**SCALE_TEST_PORTS),
        scale=True,
        breaching=SCALE_TEST_BREACHING,
        feed_interval=SCALE_TEST_FEED_INTERVAL,
        timeout=90,
    )
    try:
        yield info
    finally:
        control.down(state_dir)
