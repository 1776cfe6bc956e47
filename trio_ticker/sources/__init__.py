"""Price sources: each is a startable task that sends `Ingest` items into the hub's channel."""
