"""The ``omsflow`` command groups, one module each; ``cli.py`` is the root and imports a
group's module only when the command line names it (``cli.COMMANDS``)."""
