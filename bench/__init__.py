"""omsflow benchmarks: ``python bench/run.py`` (or ``python -m bench``) prints one table."""
