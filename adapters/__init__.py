"""Adapters to external systems. See :mod:`adapters.base` for the contracts."""
