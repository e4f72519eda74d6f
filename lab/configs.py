"""Render the configuration files the lab's components run with."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from lab.catalog import (
    DEFAULT_ALERTMANAGER_PORT,
    DEFAULT_MLFLOW_PORT,
    DEFAULT_PROMETHEUS_PORT,
    DEFAULT_SERVICE_PORT,
    DEFAULT_VICTORIA_PORT,
    HOST,
)

#: The package directory; its rules/ and templates/ ship as package data.
PACKAGE_DIR = Path(__file__).resolve().parent

#: Rule files shipped in ``lab/rules`` that Prometheus loads (the unit tests stay behind).
RULE_FILES: tuple[str, ...] = ("recording.yml", "alerts.yml")


@dataclass(frozen=True, slots=True)
class Ports:
    """Loopback ports of the lab's components."""

    prometheus: int = DEFAULT_PROMETHEUS_PORT
    alertmanager: int = DEFAULT_ALERTMANAGER_PORT
    service: int = DEFAULT_SERVICE_PORT
    mlflow: int = DEFAULT_MLFLOW_PORT
    #: VictoriaMetrics, which only the scale lab runs.
    victoria: int = DEFAULT_VICTORIA_PORT

    def url(self, component: str) -> str:
        """Base URL of ``component`` (``prometheus``, ``alertmanager``, ``service``,
        ``mlflow``, ``victoria``)."""
        return f"http://{HOST}:{getattr(self, component)}"

    @staticmethod
    def has(component: str) -> bool:
        """Whether ``component`` listens on a port of its own."""
        return component in Ports.__dataclass_fields__


def _yaml_str(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars, which keeps odd paths safe.
    return json.dumps(value)


def prometheus_config(ports: Ports, rule_paths: list[Path]) -> str:
    """Prometheus configuration: 1 s scrapes and evaluations, alerts to the lab's Alertmanager."""
    rules = "\n".join(f"  - {_yaml_str(str(p))}" for p in rule_paths)
    return f"""\
# Written by mlconsole lab up; edits are overwritten on the next up.
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{HOST}:{ports.alertmanager}"]

rule_files:
{rules}

scrape_configs:
  - job_name: mlc-service
    static_configs:
      - targets: ["{HOST}:{ports.service}"]
"""


def alertmanager_config() -> str:
    """Alertmanager configuration: group per model and alert, deliver nowhere.

    The console reads alerts from Alertmanager's API, so the receiver needs no
    integration. Short group timers make alerts show up within a second or two.
    """
    return """\
# Written by mlconsole lab up; edits are overwritten on the next up.
route:
  receiver: console
  group_by: [model, alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 24h

receivers:
  - name: console
"""


def install_rules(dest: Path) -> list[Path]:
    """Copy the shipped rule files into ``dest``; return their paths."""
    dest.mkdir(parents=True, exist_ok=True)
    source = PACKAGE_DIR / "rules"
    paths = []
    for name in RULE_FILES:
        path = dest / name
        path.write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
        paths.append(path)
    return paths


#: ``#[name`` ... ``#]name`` lines around a block of the template that is optional.
_BLOCK = re.compile(r"^#\[(\w+)\n(.*?)^#\](\w+)\n", re.MULTILINE | re.DOTALL)
#: Notes on the template itself, not meant for the config.
_NOTE = re.compile(r"^#%.*\n", re.MULTILINE)


def _blocks(text: str, keep: dict[str, bool]) -> str:
    """``text`` with each optional block kept (without its markers) or dropped."""

    def choose(match: re.Match[str]) -> str:
        name, body, end = match.groups()
        if name != end or name not in keep:
            raise ValueError(f"template block {name!r} is not closed or not known")
        return body if keep[name] else ""

    return _BLOCK.sub(choose, text)


def mlconsole_config(
    ports: Ports, state_dir: Path, *, registry: bool = True, scale: bool = False
) -> str:
    """The console's configuration for this lab, from ``lab/templates/mlconsole.yaml``.

    Without a registry, the ``registry`` source and the actions through it are left out.
    The scale lab (``scale``) has no model service, so no switch sources and no actions
    through them, and its metrics source (still ``type: prometheus``) is VictoriaMetrics,
    asked every 5 s, with 30 s for an answer of ten thousand series on a busy machine.
    """
    template = (PACKAGE_DIR / "templates" / "mlconsole.yaml").read_text(encoding="utf-8")
    template = _blocks(
        _NOTE.sub("", template), {"registry": registry and not scale, "service": not scale}
    )
    return Template(template).substitute(
        metrics_url=ports.url("victoria" if scale else "prometheus"),
        metrics_interval="5s" if scale else "2s",
        metrics_timeout=30 if scale else 3,
        alertmanager_url=ports.url("alertmanager"),
        service_url=ports.url("service"),
        mlflow_url=ports.url("mlflow"),
        state_dir=str(state_dir),
    )
