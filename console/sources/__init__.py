"""The read side: the poller that asks every source on its own schedule, the
immutable snapshot it publishes, the alias history it keeps, and PromQL checks."""
