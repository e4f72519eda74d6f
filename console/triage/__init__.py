"""Runbooks: the model, their validation, the catalog that matches them to alerts,
the walk engine, and the store of walks and their evidence."""
