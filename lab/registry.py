"""The lab's model registry: an MLflow tracking server, spoken to over its REST API.

The control plane registers every model (:func:`seed`) and moves the champion alias
as a deploy tool would (:func:`set_alias`). The model service follows the alias
(:class:`Follower`) and serves the version it names, behaving as that version's
``lab.*`` tags say:

* ``lab.error_ratio``: the share of requests that fail, e.g. ``0.002``;
* ``lab.scores``: the score distribution, ``normal`` or ``collapsed``.

Standard library only: mlflow itself lives in its own venv and is never imported.

``python -m lab.registry --url URL --models N`` waits for the server and seeds it; ``lab
up --no-wait`` runs it in the background, since it does not wait to seed itself.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

from lab import web
from lab.catalog import (
    BAD_VERSION,
    CHAMPION_ALIAS,
    FEATURES,
    GOOD_VERSION,
    REGISTERED_VERSIONS,
    model_names,
)
from lab.simulation import BAD_DEPLOY_ERROR_RATIO, NORMAL_ERROR_RATIO, Behaviour, builtin_behaviour

API = "/api/2.0/mlflow"
TAG_ERROR_RATIO = "lab.error_ratio"
TAG_SCORES = "lab.scores"
#: MLflow's ``registered-models/search`` page size limit.
PAGE_SIZE = 1000

_NEW_FEATURE = "country_risk_score"
#: Per version: weeks between training and seeding, offline AUC, and a description.
_HISTORY: dict[str, tuple[int, str, str]] = {
    "1": (9, "0.912", "Baseline: gradient-boosted trees on 12 weeks of labelled traffic."),
    "2": (6, "0.917", "Weekly retrain; adds the last 3 weeks of labels."),
    "3": (3, "0.921", "Weekly retrain; tuned learning rate and tree depth."),
    "4": (0, "0.934", f"Retrain with the new {_NEW_FEATURE} feature: best offline AUC so far."),
}

log = logging.getLogger("lab.registry")
T = TypeVar("T")


class RegistryError(Exception):
    """The registry answered, but not as the lab expects."""


def _api(url: str, endpoint: str, **params: str) -> str:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"{url.rstrip('/')}{API}/{endpoint}{query}"


def _post(url: str, endpoint: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    answer: dict[str, Any] = web.post_json(_api(url, endpoint), payload, timeout=timeout)
    return answer


def _tags(pairs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


# -- what is registered -------------------------------------------------------------


def version_tags(model: str, version: str, today: date | None = None) -> dict[str, str]:
    """The tags the lab gives ``version`` of ``model``; the ``lab.*`` ones set its behaviour.

    >>> version_tags("fraud-detector", "4", date(2026, 11, 23))["lab.error_ratio"]
    '0.6'
    """
    weeks, auc, _ = _HISTORY.get(version, (0, "", ""))
    today = today or date.today()
    bad = version == BAD_VERSION
    features = [_NEW_FEATURE if bad and f == "country_risk" else f for f in FEATURES]
    return {
        "git_sha": hashlib.sha1(f"{model}@{version}".encode()).hexdigest()[:12],
        "trained_on": (today - timedelta(weeks=weeks, days=1)).isoformat(),
        "auc": auc,
        "features": ",".join(features),
        TAG_ERROR_RATIO: repr(BAD_DEPLOY_ERROR_RATIO if bad else NORMAL_ERROR_RATIO),
        TAG_SCORES: "collapsed" if bad else "normal",
    }


def behaviour_from_tags(tags: dict[str, str]) -> Behaviour:
    """The behaviour the ``lab.*`` tags describe; ValueError if they are missing or bad."""
    try:
        ratio, scores = tags[TAG_ERROR_RATIO], tags[TAG_SCORES]
    except KeyError as exc:
        raise ValueError(f"tag {exc.args[0]} is missing") from None
    try:
        value = float(ratio)
    except ValueError:
        raise ValueError(f"tag {TAG_ERROR_RATIO}={ratio!r} is not a number") from None
    return Behaviour(error_ratio=value, scores=scores)


def seed(
    url: str,
    models: Sequence[str],
    *,
    alias: str = CHAMPION_ALIAS,
    champion: str = GOOD_VERSION,
    timeout: float = 10.0,
) -> None:
    """Register ``models`` with versions 1-4 (each from a run of its own), alias -> 3.

    Ten requests per model. The registry must not know these models yet.
    """
    started = time.time()
    today = date.fromtimestamp(started)
    for model in models:
        _post(
            url,
            "registered-models/create",
            {
                "name": model,
                "description": f"{model}, served by the lab's model service.",
                "tags": _tags({"team": "ml-platform", "sli_owner": "on-call"}),
            },
            timeout,
        )
        for version in REGISTERED_VERSIONS:
            tags = version_tags(model, version, today)
            weeks = _HISTORY.get(version, (0, "", ""))[0]
            run = _post(
                url,
                "runs/create",
                {
                    "experiment_id": "0",
                    "run_name": f"{model}-retrain-v{version}",
                    "start_time": int((started - weeks * 7 * 86400) * 1000),
                    "tags": _tags({"mlflow.source.git.commit": tags["git_sha"]}),
                },
                timeout,
            )
            run_id = run["run"]["info"]["run_id"]
            created = _post(
                url,
                "model-versions/create",
                {
                    "name": model,
                    "source": f"runs:/{run_id}/model",
                    "run_id": run_id,
                    "description": _HISTORY.get(version, (0, "", ""))[2],
                    "tags": _tags(tags),
                },
                timeout,
            )
            got = created["model_version"]["version"]
            if got != version:
                raise RegistryError(f"{model} got version {got} where {version} was expected")
        set_alias(url, model, champion, alias=alias, timeout=timeout)


# -- reading and moving aliases -------------------------------------------------------


def set_alias(
    url: str, model: str, version: str, *, alias: str = CHAMPION_ALIAS, timeout: float = 5.0
) -> None:
    """Point ``alias`` of ``model`` at ``version`` (MLflow silently overwrites)."""
    _post(
        url, "registered-models/alias", {"name": model, "alias": alias, "version": version}, timeout
    )


def get_alias(
    url: str, model: str, *, alias: str = CHAMPION_ALIAS, timeout: float = 2.0
) -> str | None:
    """The version ``alias`` of ``model`` points at; None if there is no such alias or model."""
    try:
        body = web.get_json(_api(url, "registered-models/alias", name=model, alias=alias), timeout)
    except web.HTTPCallError as exc:
        # No such model is a 404; no such alias, MLflow says with a 400.
        if exc.status in (400, 404):
            return None
        raise
    version = body.get("model_version", {}).get("version")
    return None if version is None else str(version)


def search_aliases(url: str, *, timeout: float = 2.0) -> dict[str, dict[str, str]]:
    """Every registered model's aliases (``{model: {alias: version}}``), all pages read."""
    found: dict[str, dict[str, str]] = {}
    token: str | None = None
    while True:
        params = {"max_results": str(PAGE_SIZE)}
        if token:
            params["page_token"] = token
        body = web.get_json(_api(url, "registered-models/search", **params), timeout)
        for entry in body.get("registered_models", []):
            found[str(entry["name"])] = {
                str(a["alias"]): str(a["version"]) for a in entry.get("aliases", [])
            }
        token = body.get("next_page_token")
        if not token:
            return found


def get_version_tags(url: str, model: str, version: str, *, timeout: float = 2.0) -> dict[str, str]:
    """The tags of ``version`` of ``model``."""
    body = web.get_json(_api(url, "model-versions/get", name=model, version=version), timeout)
    return {str(t["key"]): str(t["value"]) for t in body["model_version"].get("tags", [])}


class Follower:
    """Follows one alias of the lab's models, reporting each move once.

    :meth:`poll` asks the registry and returns ``(model, version, behaviour)`` for every
    model whose alias points somewhere new since the last poll. It raises
    :class:`web.HTTPCallError` when the registry cannot be reached, so the caller keeps
    serving what it serves. A model that cannot be resolved this time (a version that
    vanished, say) is logged once and retried on the next poll.
    """

    def __init__(
        self, url: str, models: Sequence[str], *, alias: str = CHAMPION_ALIAS, timeout: float = 2.0
    ) -> None:
        self.url = url
        self.models = list(models)
        self.alias = alias
        self.timeout = timeout
        #: The version each model's alias pointed at when last resolved.
        self.champions: dict[str, str] = {}
        self._reported: dict[str, str] = {}

    def poll(self) -> list[tuple[str, str, Behaviour]]:
        """One round: the alias moves since the last round, with each version's behaviour."""
        registered = search_aliases(self.url, timeout=self.timeout)
        moves = []
        for model in self.models:
            if model not in registered:
                self._problem(model, f"{model} is not registered")
                continue
            version = registered[model].get(self.alias)
            if version is None:
                # Search results may come without aliases on SQL stores: ask directly.
                version = self._call(model, get_alias, self.url, model, alias=self.alias)
            if version is None:
                self._problem(model, f"{model} has no {self.alias!r} alias")
                continue
            if version == self.champions.get(model):
                continue
            tags = self._call(model, get_version_tags, self.url, model, version)
            if tags is None:
                continue
            try:
                behaviour = behaviour_from_tags(tags)
            except ValueError as exc:
                behaviour = builtin_behaviour(version)
                log.warning("%s version %s: %s; serving it as %s", model, version, exc, behaviour)
            self.champions[model] = version
            self._reported.pop(model, None)
            moves.append((model, version, behaviour))
        return moves

    def _call(self, model: str, fetch: Callable[..., T], *args: str, **kwargs: str) -> T | None:
        """``fetch(*args, **kwargs)``, or None after reporting an error answer for ``model``."""
        try:
            return fetch(*args, timeout=self.timeout, **kwargs)
        except web.HTTPCallError as exc:
            if exc.status is None:
                raise  # the registry is unreachable: the whole round fails
            self._problem(model, f"{model}: {exc}")
            return None

    def _problem(self, model: str, message: str) -> None:
        if self._reported.get(model) != message:
            self._reported[model] = message
            kept = self.champions.get(model)
            if kept is None:
                # Routine while the lab is still registering its models.
                log.info("%s; serving the built-in version meanwhile", message)
            else:
                log.warning("%s; keeping version %s", message, kept)


# -- seeding in the background ----------------------------------------------------------


def wait_healthy(url: str, timeout: float) -> bool:
    """Wait until MLflow answers ``/health``; False if it did not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.is_ok(f"{url.rstrip('/')}/health"):
            return True
        time.sleep(0.2)
    return False


def main(argv: list[str] | None = None) -> int:
    """Wait for the registry, then seed it with the lab's models."""
    parser = argparse.ArgumentParser(
        prog="python -m lab.registry", description="Seed the lab's MLflow with its models."
    )
    parser.add_argument("--url", required=True, help="MLflow base URL")
    parser.add_argument("--models", type=int, required=True, help="number of lab models")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for MLflow")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not wait_healthy(args.url, args.wait):
        log.error("MLflow at %s was not healthy within %.0fs; nothing seeded", args.url, args.wait)
        return 1
    models = model_names(args.models)
    try:
        seed(args.url, models)
    except (web.HTTPCallError, RegistryError, KeyError) as exc:
        log.error("seeding %s failed: %s", args.url, exc)
        return 1
    log.info("seeded %d models into %s", len(models), args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
