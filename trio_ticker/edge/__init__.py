"""The network edge: Hypercorn serving, the `/ws` endpoint and its sessions, transport, access, limits, metrics."""
