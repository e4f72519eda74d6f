

#: Marks the package as mlconsole's: its generic name may be another distribution's
#: (see console.cli.common.foreign_packages).
DISTRIBUTION = "mlconsole"
