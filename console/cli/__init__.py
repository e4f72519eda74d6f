"""The ``mlconsole`` command line: ``main`` (the parser and dispatch), ``common``
(exit codes, the config, printing text from outside), and one module per command
group."""
