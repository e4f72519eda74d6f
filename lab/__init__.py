"""The mlconsole lab: a local, self-contained production world to practise incidents on.

It runs a simulated model service that exports Prometheus metrics, a Prometheus that
scrapes it and evaluates SLI/SLO rules, and an Alertmanager that receives the alerts.
Faults can be injected into the service to rehearse incidents end to end.
"""
