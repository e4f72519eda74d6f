"""Names shared by the lab's service, its control plane and its command line.

This module holds constants only, so the command line can import it without cost.
"""

from __future__ import annotations

#: The first models get memorable names; any further ones are numbered.
NAMED_MODELS: tuple[str, ...] = ("fraud-detector", "churn-predictor", "recommender")

#: Input features every simulated model receives.
FEATURES: tuple[str, ...] = ("amount", "tenure_days", "country_risk")

#: The feature whose distribution shifts under the ``drift`` fault.
DRIFT_FEATURE = "amount"

#: The feature an upstream schema change turns into nulls under ``schema-break``.
SCHEMA_BREAK_FEATURE = "country_risk"

#: The retraining pipeline every model has.
PIPELINE = "retrain"

#: The version served normally, and the one a bad deploy rolls out.
GOOD_VERSION = "3"
BAD_VERSION = "4"

#: Versions every model is registered with in the lab's model registry.
REGISTERED_VERSIONS: tuple[str, ...] = ("1", "2", "3", "4")

#: The registry alias that names the version the model service serves.
CHAMPION_ALIAS = "champion"

#: The version label while a model's rule-based fallback answers instead of the model.
FALLBACK_VERSION = "fallback"

#: Injectable faults and what each one does to a model.
FAULTS: dict[str, str] = {
    "drift": "the distribution of one input feature shifts hard",
    "schema-break": "an upstream schema change nulls one feature and breaks the pipeline",
    "bad-deploy": "version 4 is rolled out (with a registry, its champion alias moves to 4): "
    "most requests fail and scores collapse",
    "latency": "most requests take 0.5-2 s",
    "pipeline-fail": "every retraining pipeline run fails",
    "stale-features": "the feature store stops refreshing",
}

#: Default loopback ports of the lab's components.
DEFAULT_PROMETHEUS_PORT = 19090
DEFAULT_ALERTMANAGER_PORT = 19093
DEFAULT_SERVICE_PORT = 19100
DEFAULT_MLFLOW_PORT = 19500
DEFAULT_VICTORIA_PORT = 19428

#: Default number of simulated models.
DEFAULT_MODELS = 3

#: The scale lab (``lab up --scale N``): the share of models that breach an objective,
#: and how often a fresh point is appended to every series (seconds).
DEFAULT_BREACHING = 0.05
DEFAULT_FEED_INTERVAL = 15.0
#: The history the scale lab imports at start, and its step (seconds): three times the
#: dashboard's sparkline window, at the append interval.
SCALE_HISTORY = 900.0
SCALE_STEP = 15.0

#: Every component binds to loopback only.
HOST = "127.0.0.1"


def model_names(count: int) -> list[str]:
    """Return the names of ``count`` simulated models.

    >>> model_names(4)
    ['fraud-detector', 'churn-predictor', 'recommender', 'model-0004']
    """
    if count < 1:
        raise ValueError("the lab needs at least one model")
    named = list(NAMED_MODELS[:count])
    return named + [f"model-{i:04d}" for i in range(len(named) + 1, count + 1)]
