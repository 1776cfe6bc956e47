"""Delivery: the hub's fan-out into one queue per client, the writers that drain them, pacing and eviction."""
