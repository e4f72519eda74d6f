"""Textual screens and widgets. They render snapshots and turn keys into intents."""
