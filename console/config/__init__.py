"""The console's configuration: its typed models, YAML loading with every error
located, each source's options checked against its adapter, and where the file is."""
