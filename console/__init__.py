"""mlconsole core: config, sources, triage, actions, incidents, and the command line
(console.cli). Never imports Textual: the front end is ``screens``."""

__version__ = "0.1.0"

#: Marks the package as mlconsole's: its generic name may be another distribution's
#: (see console.cli.common.foreign_packages).
DISTRIBUTION = "mlconsole"
