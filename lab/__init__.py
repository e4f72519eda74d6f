"""The mlconsole lab: a local, self-contained production world to practise incidents on.

It runs a simulated model service that exports Prometheus metrics, a Prometheus that
scrapes it and evaluates SLI/SLO rules, an Alertmanager that receives the alerts, and
an MLflow model registry whose ``champion`` aliases decide which version each model
serves. Faults can be injected to rehearse incidents end to end, and the mitigations
are real: moving an alias back, switching a model to its rule-based fallback, or
pausing its retraining pipeline changes what Prometheus sees within seconds.

The scale lab (``lab up --scale N``, :mod:`lab.scale`) runs none of that: it holds
synthetic SLI series for thousands of models in VictoriaMetrics, and their alerts in
Alertmanager, to try the console at a size one Prometheus would not serve.
"""

#: Marks the package as mlconsole's: its generic name may be another distribution's
#: (see console.cli.common.foreign_packages).
DISTRIBUTION = "mlconsole"
