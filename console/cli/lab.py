"""The ``lab`` subcommand of the mlconsole command line.

Importing this module is cheap: the control plane is imported by the handlers only,
and what they print is in :mod:`console.cli.lab_show`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from console.cli.common import ExitCode
from lab.catalog import (
    DEFAULT_ALERTMANAGER_PORT,
    DEFAULT_BREACHING,
    DEFAULT_FEED_INTERVAL,
    DEFAULT_MLFLOW_PORT,
    DEFAULT_MODELS,
    DEFAULT_PROMETHEUS_PORT,
    DEFAULT_SERVICE_PORT,
    DEFAULT_VICTORIA_PORT,
    FAULTS,
)

if TYPE_CHECKING:
    pass
from console.cli.lab_show import ProgressLine, print_status, print_up

#: ``status`` exit codes: 0 healthy, 1 degraded, 3 not running (as in LSB init scripts).

#: How long ``up`` waits for readiness by default (seconds); the scale lab imports
#: millions of samples first.
_TIMEOUT = 60.0
_SCALE_TIMEOUT = 180.0


#: The most models each lab takes: the simulation serves and scrapes every model on
#: this machine; the scale lab holds nine series per model in VictoriaMetrics.
MAX_SIMULATED = 5_000
MAX_SCALE = 100_000


def _count(maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number from 1 to ``maximum``."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from 1 to {maximum:,}, got {value:,}")
        return value

    return count


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be a fraction between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a TCP port (1-65535)")
    return value


def _add_state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        default=None,
        help="where the lab keeps configs, logs and data "
        "(default: $MLCONSOLE_LAB_DIR, else $XDG_STATE_HOME/mlconsole/lab)",
    )


def add_lab_parser(subparsers: Any) -> None:
    """Add the ``lab`` subcommand (up, down, status, inject, reset, config-path) to ``subparsers``.

    Every leaf parser sets ``func``, which takes the parsed namespace and returns the
    process exit code.
    """
    lab = subparsers.add_parser(
        "lab",
        help="run the local demo lab (model service, Prometheus, Alertmanager, MLflow)",
        description="A local production world to rehearse incidents on: a simulated "
        "model service, Prometheus with SLO rules, Alertmanager, and an MLflow model "
        "registry whose champion aliases decide what the service serves. "
        "`lab up --scale N` starts the scale lab instead: VictoriaMetrics with synthetic "
        "SLI series for N models, and their alerts.",
    )
    commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="start the lab",
        description="Start the lab: the simulation (model service, Prometheus, "
        "Alertmanager, MLflow), or with --scale N the scale lab: VictoriaMetrics holding "
        "synthetic SLI series for N models (model-00000, ...; up to 10,000 and more) "
        "under the recording-rule names the console reads, imported with 15 minutes of "
        "history and a fresh point every --feed-interval seconds, plus Alertmanager with "
        "the alerts of the breaching models. The scale lab runs no model service, "
        "Prometheus or MLflow, so it has no faults and no mitigations; the console reads "
        "it through the same prometheus source type.",
    )
    _add_state_dir(up)
    size = up.add_mutually_exclusive_group()
    size.add_argument(
        "--models",
        type=_count(MAX_SIMULATED),
        # None, not the default itself: argparse lets a value equal to the default
        # pass as "not given", so `--models 3 --scale 5` would not be refused.
        default=None,
        metavar="N",
        help=f"number of simulated models (default {DEFAULT_MODELS}, at most {MAX_SIMULATED:,})",
    )
    size.add_argument(
        "--scale",
        type=_count(MAX_SCALE),
        default=None,
        metavar="N",
        help="start the scale lab with N synthetic models instead of the simulation "
        f"(at most {MAX_SCALE:,}; needs victoria-metrics: apt-get install victoria-metrics)",
    )
    scale = up.add_argument_group("scale lab (with --scale)")
    scale.add_argument(
        "--victoria-port",
        type=_port,
        default=DEFAULT_VICTORIA_PORT,
        metavar="PORT",
        help=f"VictoriaMetrics' port (default {DEFAULT_VICTORIA_PORT})",
    )
    scale.add_argument(
        "--breaching",
        type=_fraction,
        default=DEFAULT_BREACHING,
        metavar="FRACTION",
        help="share of the models out of an objective, each with a firing alert "
        f"(default {DEFAULT_BREACHING})",
    )
    scale.add_argument(
        "--feed-interval",
        type=_seconds,
        default=DEFAULT_FEED_INTERVAL,
        metavar="SECONDS",
        help="how often a fresh point is appended to every series "
        f"(default {DEFAULT_FEED_INTERVAL:g})",
    )
    up.add_argument(
        "--prometheus-port",
        type=_port,
        default=DEFAULT_PROMETHEUS_PORT,
        metavar="PORT",
        help=f"default {DEFAULT_PROMETHEUS_PORT}",
    )
    up.add_argument(
        "--alertmanager-port",
        type=_port,
        default=DEFAULT_ALERTMANAGER_PORT,
        metavar="PORT",
        help=f"default {DEFAULT_ALERTMANAGER_PORT}",
    )
    up.add_argument(
        "--service-port",
        type=_port,
        default=DEFAULT_SERVICE_PORT,
        metavar="PORT",
        help=f"default {DEFAULT_SERVICE_PORT}",
    )
    up.add_argument(
        "--mlflow-port",
        type=_port,
        default=DEFAULT_MLFLOW_PORT,
        metavar="PORT",
        help=f"default {DEFAULT_MLFLOW_PORT}",
    )
    up.add_argument(
        "--registry",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run MLflow as the model registry the service deploys from (default: run it; "
        "--no-registry for big labs, where versions change only by fault)",
    )
    up.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait until every component is ready (default: wait)",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"how long to wait for readiness "
        f"(default {_TIMEOUT:g}; {_SCALE_TIMEOUT:g} with --scale)",
    )
    up.set_defaults(func=_cmd_up)

    down = commands.add_parser(
        "down",
        help="stop the lab (keeps logs and data)",
        description="Stop the processes the lab started.",
    )
    _add_state_dir(down)
    down.set_defaults(func=_cmd_down)

    status = commands.add_parser(
        "status",
        help="show the lab's components",
        description="Show each component's pid, liveness and URL. "
        "Exit code: 0 healthy, 1 degraded, 3 not running.",
    )
    _add_state_dir(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_cmd_status)

    fault_help = "; ".join(f"{name}: {text}" for name, text in FAULTS.items())
    inject = commands.add_parser(
        "inject", help="inject a fault into a model", description=f"Inject a fault. {fault_help}."
    )
    _add_state_dir(inject)
    inject.add_argument("fault", choices=list(FAULTS), metavar="FAULT", help=", ".join(FAULTS))
    inject.add_argument(
        "--model", default=None, metavar="MODEL", help="target model (default: the first one)"
    )
    inject.set_defaults(func=_cmd_inject)

    reset = commands.add_parser(
        "reset",
        help="clear every injected fault",
        description="Clear every fault, roll back bad deploys (in MLflow too), turn "
        "fallbacks off and resume pipelines.",
    )
    _add_state_dir(reset)
    reset.set_defaults(func=_cmd_reset)

    config_path = commands.add_parser(
        "config-path",
        help="print the path of the lab's mlconsole config",
        description="Print where `lab up` writes the mlconsole config for the lab, for "
        "`export MLCONSOLE_CONFIG=$(mlconsole lab config-path)`. Exits 3 if it is not there.",
    )
    _add_state_dir(config_path)
    config_path.set_defaults(func=_cmd_config_path)


def _err(message: str) -> None:
    print(f"mlconsole lab: {message}", file=sys.stderr)


def _cmd_up(args: argparse.Namespace) -> int:
    from lab.configs import Ports
    from lab.control import up
    from lab.errors import LabError

    ports = Ports(
        args.prometheus_port,
        args.alertmanager_port,
        args.service_port,
        args.mlflow_port,
        args.victoria_port,
    )
    scale = args.scale is not None
    timeout = args.timeout or (_SCALE_TIMEOUT if scale else _TIMEOUT)
    progress = ProgressLine()
    try:
        info = up(
            args.state_dir,
            models=args.scale if scale else (args.models or DEFAULT_MODELS),
            ports=ports,
            wait=args.wait,
            timeout=timeout,
            progress=progress,
            registry=args.registry,
            scale=scale,
            breaching=args.breaching,
            feed_interval=args.feed_interval,
        )
    except LabError as exc:
        if progress.tty:
            sys.stderr.write("\n")
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted; everything started was stopped again")
        return 130
    print_up(info)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    from lab.control import down
    from lab.errors import LabError
    from lab.paths import resolve_state_dir

    try:
        stopped = down(args.state_dir)
    except LabError as exc:
        _err(str(exc))
        return 1
    root = resolve_state_dir(args.state_dir)
    if stopped:
        print(f"lab stopped ({', '.join(stopped)}); logs and data kept in {root}")
    else:
        print("lab is not running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from lab.status import status

    st = status(args.state_dir)
    if args.json:
        from console.times import iso

        print(json.dumps(st.to_json(iso), indent=2))
    else:
        print_status(st)
    if not st.recorded:
        return ExitCode.NOT_RUNNING
    return 0 if st.healthy else ExitCode.DEGRADED


def _cmd_inject(args: argparse.Namespace) -> int:
    from lab.control import inject
    from lab.errors import LabError

    try:
        answer = inject(args.state_dir, args.fault, args.model)
    except LabError as exc:
        _err(str(exc))
        return 1
    model = args.model or answer["models"][0]
    registry = answer.get("registry")
    if args.fault == "bad-deploy" and registry:
        version = answer["versions"][model]
        print(f"injected {args.fault} into {model}: {registry['alias']} -> version {version}")
    else:
        print(f"injected {args.fault} into {model}")
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    from lab.control import reset
    from lab.errors import LabError

    try:
        reset(args.state_dir)
    except LabError as exc:
        _err(str(exc))
        return 1
    print("all faults cleared, bad deploys rolled back, fallbacks off, pipelines resumed")
    return 0


def _cmd_config_path(args: argparse.Namespace) -> int:
    from lab.paths import resolve_state_dir
    from lab.state import CONFIG_NAME

    path = resolve_state_dir(args.state_dir) / CONFIG_NAME
    print(path)
    if not path.exists():
        _err(f"{path} does not exist yet; start the lab with `mlconsole lab up`")
        return ExitCode.NOT_RUNNING
    return 0
