"""The process: its root task (`service`), the ingest-only process's root, the `--workers` supervisor, logging and
the garbage collector's tuning. `app.py` and `__main__.py` build and run what these hold."""
