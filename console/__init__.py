"""mlconsole core: config, snapshot, poller and CLI. Never imports Textual (but for app.py)."""

__version__ = "0.1.0"
