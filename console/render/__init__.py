"""How snapshot values look, shared by the commands and the screens: formats, the
models table's columns and cells, what a model serves."""
